package patches

import (
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// live is an election-mode Deployment as stored: generation observed,
// replicas running.
func live(annotations map[string]string, replicas, running int32) *appsv1.Deployment {
	a := map[string]string{AnnotationSingleton: "true", AnnotationMode: string(ModeElection)}
	for k, v := range annotations {
		a[k] = v
	}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "scheduler", Namespace: "jobs", Annotations: a, Generation: 4},
		Spec:       appsv1.DeploymentSpec{Replicas: ptr.To(replicas)},
		Status:     appsv1.DeploymentStatus{ObservedGeneration: 4, Replicas: running, TerminatingReplicas: ptr.To[int32](0)},
	}
}

func TestCheckUpdate(t *testing.T) {
	renamed := map[string]string{AnnotationLeaseName: "other"}
	tests := map[string]struct {
		old, new *appsv1.Deployment
		wantErr  string
	}{
		"the Lease renamed on a running Deployment": {
			old: live(nil, 3, 3), new: live(renamed, 3, 3),
			wantErr: `the effective Lease would change from "scheduler" to "other" while the Deployment may have candidates (spec.replicas is 3; status.replicas is 3)`},
		"the Lease renamed in the same write as a scale to 0": {
			old: live(nil, 3, 3), new: live(renamed, 0, 3), wantErr: "spec.replicas is 3"},
		"the Lease renamed once scaled to 0 but Pods still running": {
			old: live(nil, 0, 2), new: live(renamed, 0, 2), wantErr: "status.replicas is 2"},
		"the Lease annotation removed: back to the Deployment's name": {
			old: live(renamed, 1, 1), new: live(nil, 1, 1), wantErr: `from "other" to "scheduler"`},
		"the Lease renamed once scaled to 0 and every Pod gone": {
			old: live(nil, 0, 0), new: live(renamed, 0, 0)},
		"another setting changed on a running Deployment": {
			old: live(nil, 3, 3), new: live(map[string]string{AnnotationLeaseDuration: "20s"}, 3, 3)},
		"the same Lease written explicitly": {
			old: live(nil, 3, 3), new: live(map[string]string{AnnotationLeaseName: "scheduler"}, 3, 3)},
		"leaving election mode": {
			old: live(nil, 3, 3), new: live(map[string]string{AnnotationMode: string(ModeReplicas), AnnotationLeaseName: "other"}, 3, 3)},
		"entering election mode": {
			old: live(map[string]string{AnnotationMode: string(ModeReplicas)}, 1, 1), new: live(renamed, 3, 1)},
	}
	terminating := live(nil, 0, 0)
	terminating.Status.TerminatingReplicas = ptr.To[int32](1)
	tests["the Lease renamed while a Pod is still terminating"] = struct {
		old, new *appsv1.Deployment
		wantErr  string
	}{old: terminating, new: live(renamed, 0, 0), wantErr: "status.terminatingReplicas is 1"}
	stale := live(nil, 0, 0)
	stale.Generation = 5
	tests["the Lease renamed before the scale to 0 is observed"] = struct {
		old, new *appsv1.Deployment
		wantErr  string
	}{old: stale, new: live(renamed, 0, 0), wantErr: "has observed generation 4 of 5"}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := CheckUpdate(tc.old, tc.new, Policy{})
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("got %v, want an error containing %q", err, tc.wantErr)
			}
			for _, step := range []string{"kubectl scale deployment/scheduler --replicas=0", "kubectl get pods -l singleton.dev/deployment=scheduler", "create a new Deployment"} {
				if !strings.Contains(err.Error(), step) {
					t.Errorf("the refusal does not give the step %q: %v", step, err)
				}
			}
		})
	}
}

func TestKeepInjectionRestoresWhatAServerSideApplyDropped(t *testing.T) {
	src := live(nil, 3, 3)
	src.Spec.Template.Labels = map[string]string{"app": "scheduler"}
	stored := src.DeepCopy()
	if _, err := Apply(stored, Policy{Elector: ElectorOptions{Version: "v1.4.0"}}); err != nil {
		t.Fatal(err)
	}
	p := Policy{Elector: ElectorOptions{Version: "v1.5.0"}}

	applied := src.DeepCopy() // the manifest as written: no sidecar
	if TemplateChanged(stored, applied) {
		t.Fatal("the manifest as written counts as a change of the pod template")
	}
	KeepInjection(stored, applied, p)
	if _, err := Apply(applied, p); err != nil {
		t.Fatal(err)
	}
	if v, _ := InjectedVersion(&applied.Spec.Template); v != "v1.4.0" || TemplateChanged(stored, applied) {
		t.Errorf("the stored sidecar was not kept: injected by %q", v)
	}

	changed := src.DeepCopy()
	changed.Spec.Template.Spec.Hostname = "x"
	if !TemplateChanged(stored, changed) {
		t.Fatal("a change of the user's pod template is not seen")
	}
	KeepInjection(stored, changed, p)
	if _, ok := InjectedVersion(&changed.Spec.Template); ok {
		t.Error("the stored template was restored over the user's change")
	}

	deny := src.DeepCopy()
	deny.Annotations[AnnotationEnforcement] = string(EnforcementDeny)
	KeepInjection(stored, deny, p)
	if _, ok := InjectedVersion(&deny.Spec.Template); ok {
		t.Error("deny mode got the stored template: it must take the manifest as written")
	}
}
