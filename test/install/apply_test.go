//go:build integration

package install

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/singleton-webhook/singleton-webhook/internal/certmanager"
	"github.com/singleton-webhook/singleton-webhook/internal/testenv"
)

// wantObjects returns the objects the install must contain, as kind/name.
func wantObjects() []string {
	return []string{
		"Namespace/singleton-system",
		"ServiceAccount/singleton-webhook",
		"ClusterRole/singleton-webhook",
		"ClusterRoleBinding/singleton-webhook",
		"Role/singleton-webhook-leader-election",
		"RoleBinding/singleton-webhook-leader-election",
		"Service/singleton-webhook",
		"Deployment/singleton-webhook",
		"PodDisruptionBudget/singleton-webhook",
		"Issuer/singleton-webhook-selfsigned",
		"Certificate/singleton-webhook-ca",
		"Issuer/singleton-webhook-ca",
		"Certificate/singleton-webhook-serving",
		"MutatingWebhookConfiguration/singleton-webhook",
		"ValidatingAdmissionPolicy/singleton-webhook-self-restraint",
		"ValidatingAdmissionPolicyBinding/singleton-webhook-self-restraint",
	}
}

// TestInstallAppliesServerSide applies the rendered install to a real API
// server, with cert-manager's CRDs installed, as `make deploy` does, and
// checks that every object is there, that applying again changes nothing,
// and that the API server's own Pod Security admission accepts the webhook's
// Pod in its restricted namespace.
func TestInstallAppliesServerSide(t *testing.T) {
	crds, err := certmanager.CRDDir()
	if err != nil {
		t.Fatal(err)
	}
	in := renderInstall(t)
	checkRendered(t, in)
	env := testenv.Start(t, testenv.Options{CRDDirectoryPaths: []string{crds}, SkipWebhookConfiguration: true})

	if _, _, err := env.Kubectl(t, "", "apply", "--server-side", "--field-manager=singleton-install", "-f", in.file); err != nil {
		t.Fatalf("server-side apply of the install failed: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, o := range in.objects {
		got := &unstructured.Unstructured{}
		got.SetGroupVersionKind(o.GroupVersionKind())
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(o), got); err != nil {
			t.Errorf("%s %s was not created: %v", o.GetKind(), o.GetName(), err)
		}
	}
	// A second apply of the same file must be a no-op: no object changes
	// its resourceVersion.
	before := resourceVersions(ctx, t, env, in)
	if _, _, err := env.Kubectl(t, "", "apply", "--server-side", "--field-manager=singleton-install", "-f", in.file); err != nil {
		t.Fatalf("second server-side apply failed: %v", err)
	}
	if after := resourceVersions(ctx, t, env, in); !slices.Equal(before, after) {
		t.Errorf("applying the install twice changed objects: resourceVersions %v, then %v", before, after)
	}
	checkPodAdmitted(ctx, t, env, in)
	t.Run("RBAC", func(t *testing.T) { checkRBAC(ctx, t, env) })
}

// checkRendered checks what rendering must produce: every expected object,
// and the image substituted everywhere, the elector image included.
func checkRendered(t *testing.T, in *install) {
	t.Helper()
	var got []string
	for _, o := range in.objects {
		got = append(got, o.GetKind()+"/"+o.GetName())
	}
	for _, w := range wantObjects() {
		if !slices.Contains(got, w) {
			t.Errorf("rendered install lacks %s; it has %v", w, got)
		}
	}
	if strings.Contains(string(in.yaml), baseImage+":") {
		t.Errorf("rendered install still names %s:<tag>; want every image set to %s", baseImage, testImage)
	}
	c := webhookContainer(t, in)
	if c.Image != testImage {
		t.Errorf("webhook image = %q, want %q", c.Image, testImage)
	}
	if v := envValue(c, "SINGLETON_ELECTOR_IMAGE"); v != testImage {
		t.Errorf("elector image (env SINGLETON_ELECTOR_IMAGE) = %q, want %q", v, testImage)
	}
	if !slices.Contains(c.Args, "--elector-image=$(SINGLETON_ELECTOR_IMAGE)") {
		t.Errorf("webhook args %v do not pass the elector image", c.Args)
	}
}

// checkPodAdmitted creates, in dry-run, a Pod from the Deployment's template
// in singleton-system: the API server's PodSecurity admission enforces the
// namespace's "restricted" label on it, and the ServiceAccount admission
// checks the account exists.
func checkPodAdmitted(ctx context.Context, t *testing.T, env *testenv.Env, in *install) {
	t.Helper()
	tmpl := podTemplate(t, in.find(t, "Deployment", "singleton-webhook"))
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "singleton-webhook-", Namespace: "singleton-system", Labels: tmpl.Labels},
		Spec:       tmpl.Spec,
	}
	_, err := env.Clientset.CoreV1().Pods(pod.Namespace).Create(ctx, pod, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	if err != nil {
		t.Errorf("the API server refused the webhook's Pod in singleton-system: %v", err)
	}
}

func resourceVersions(ctx context.Context, t *testing.T, env *testenv.Env, in *install) []string {
	t.Helper()
	var rvs []string
	for _, o := range in.objects {
		got := &unstructured.Unstructured{}
		got.SetGroupVersionKind(o.GroupVersionKind())
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(o), got); err != nil {
			t.Fatalf("get %s %s: %v", o.GetKind(), o.GetName(), err)
		}
		rvs = append(rvs, o.GetKind()+"/"+o.GetName()+"@"+got.GetResourceVersion())
	}
	return rvs
}

// podTemplate decodes the Pod template of a workload object.
func podTemplate(t *testing.T, o *unstructured.Unstructured) *corev1.PodTemplateSpec {
	t.Helper()
	path := []string{"spec", "template"}
	if o.GetKind() == "CronJob" {
		path = []string{"spec", "jobTemplate", "spec", "template"}
	}
	m, ok, err := unstructured.NestedMap(o.Object, path...)
	if err != nil || !ok {
		t.Fatalf("%s %s has no pod template (err: %v)", o.GetKind(), o.GetName(), err)
	}
	tmpl := &corev1.PodTemplateSpec{}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(m, tmpl, true); err != nil {
		t.Fatalf("decode pod template of %s %s: %v", o.GetKind(), o.GetName(), err)
	}
	return tmpl
}

func webhookContainer(t *testing.T, in *install) corev1.Container {
	t.Helper()
	tmpl := podTemplate(t, in.find(t, "Deployment", "singleton-webhook"))
	for _, c := range tmpl.Spec.Containers {
		if c.Name == "webhook" {
			return c
		}
	}
	t.Fatalf("Deployment singleton-webhook has no container named webhook")
	return corev1.Container{}
}

func envValue(c corev1.Container, name string) string {
	for _, e := range c.Env {
		if e.Name == name {
			return e.Value
		}
	}
	return ""
}
