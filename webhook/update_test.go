package webhook

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/singleton-webhook/singleton-webhook/patches"
)

// storedElection is an election-mode Deployment as version injected it and
// the API server stores it, with 3 Pods running.
func storedElection(t *testing.T, version string) *appsv1.Deployment {
	t.Helper()
	d := &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: "default", Generation: 2, Annotations: map[string]string{"singleton": "true", patches.AnnotationMode: "election"}},
		Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](3),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "app"}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "app"}},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.k8s.io/pause:3.10"}}}}},
		Status: appsv1.DeploymentStatus{ObservedGeneration: 2, Replicas: 3},
	}
	if _, err := patches.Apply(d, patches.Policy{Elector: patches.ElectorOptions{Version: version}}); err != nil {
		t.Fatal(err)
	}
	return d
}

// update runs an UPDATE of stored to d through a handler of version and
// returns the response and the object it makes.
func update(t *testing.T, version string, stored, d *appsv1.Deployment) (admission.Response, *appsv1.Deployment) {
	t.Helper()
	oldRaw, _ := json.Marshal(stored)
	raw, _ := json.Marshal(d)
	req := deploymentRequest(admissionv1.Update, raw)
	req.OldObject = runtime.RawExtension{Raw: oldRaw}
	h := &Deployments{Policy: patches.Policy{Elector: patches.ElectorOptions{Version: version}}}
	resp := h.Handle(context.Background(), req)
	out := &appsv1.Deployment{}
	if resp.Allowed {
		if err := json.Unmarshal(applyResponse(t, raw, resp), out); err != nil {
			t.Fatal(err)
		}
	}
	return resp, out
}

func TestUpdateKeepsAnOlderSidecarUnlessThePodTemplateChanges(t *testing.T) {
	stored := storedElection(t, "v1.4.0")

	_, same := update(t, "v1.5.0", stored, stored.DeepCopy())
	if v, _ := patches.InjectedVersion(&same.Spec.Template); v != "v1.4.0" {
		t.Errorf("an unchanged write (the drift controller's, a re-apply) renewed the sidecar to %q", v)
	}

	asWritten := stored.DeepCopy() // a server-side apply of the manifest drops what the webhook wrote
	asWritten.Spec.Template = *storedElection(t, "v1.4.0").Spec.Template.DeepCopy()
	asWritten.Spec.Template.Annotations = nil
	asWritten.Spec.Template.Spec = corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.k8s.io/pause:3.10"}}}
	delete(asWritten.Spec.Template.Labels, patches.LabelDeployment)
	_, applied := update(t, "v1.5.0", stored, asWritten)
	if v, _ := patches.InjectedVersion(&applied.Spec.Template); v != "v1.4.0" || patches.TemplateChanged(stored, applied) {
		t.Errorf("re-applying the manifest as written changed the pod template (sidecar of %q)", v)
	}

	changed := stored.DeepCopy()
	changed.Spec.Template.Spec.Containers[0].Image = "registry.k8s.io/pause:3.11"
	resp, renewed := update(t, "v1.5.0", stored, changed)
	if v, _ := patches.InjectedVersion(&renewed.Spec.Template); v != "v1.5.0" {
		t.Errorf("a new app image kept the sidecar of %q, want it renewed in the same rollout", v)
	}
	if !strings.Contains(strings.Join(resp.Warnings, "\n"), "renewed from version v1.4.0 to v1.5.0") {
		t.Errorf("warnings %q do not say the sidecar was renewed", resp.Warnings)
	}
}

func TestUpdateRefusesALeaseChangeOfALiveElection(t *testing.T) {
	stored := storedElection(t, "v1.5.0")
	renamed := stored.DeepCopy()
	renamed.Annotations[patches.AnnotationLeaseName] = "other"
	resp, _ := update(t, "v1.5.0", stored, renamed)
	if resp.Allowed || resp.Result.Code != 403 || !strings.Contains(resp.Result.Message, "kubectl scale deployment/app --replicas=0") {
		t.Fatalf("allowed %t, status %+v; want a denial with the safe procedure", resp.Allowed, resp.Result)
	}

	stored.Spec.Replicas, stored.Status.Replicas = ptr.To[int32](0), 0
	renamed.Spec.Replicas = ptr.To[int32](0)
	if resp, _ := update(t, "v1.5.0", stored, renamed); !resp.Allowed {
		t.Errorf("refused once scaled to 0 with no Pod left: %+v", resp.Result)
	}
}
