//go:build integration

package integration

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/singleton-webhook/singleton-webhook/internal/app"
	"github.com/singleton-webhook/singleton-webhook/internal/testenv"
	"github.com/singleton-webhook/singleton-webhook/patches"
)

// policyInstall is the policy-mode install for a cluster policy: the
// policies patches generates (internal/app checks that the kustomize
// component and the chart hold the same), the component's bindings, and
// the webhook configuration with the component's extra match condition.
type policyInstall struct {
	objects []client.Object
	webhook *admissionregistrationv1.MutatingWebhookConfiguration
}

func newPolicyInstall(t *testing.T, env *testenv.Env, p patches.Policy) *policyInstall {
	t.Helper()
	ps, err := patches.NewAdmissionPolicies(p)
	if err != nil {
		t.Fatal(err)
	}
	pi := &policyInstall{objects: []client.Object{ps.Mutating, ps.Validating, ps.Warnings}}
	b, err := os.ReadFile(filepath.Join(env.Root, "manifests", "components", "policy", "bindings.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, doc := range bytes.Split(b, []byte("\n---\n")) {
		var meta metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &meta); err != nil {
			t.Fatalf("decode bindings.yaml: %v", err)
		}
		var obj client.Object
		switch meta.Kind {
		case "MutatingAdmissionPolicyBinding":
			obj = &admissionregistrationv1.MutatingAdmissionPolicyBinding{}
		case "ValidatingAdmissionPolicyBinding":
			obj = &admissionregistrationv1.ValidatingAdmissionPolicyBinding{}
		default:
			t.Fatalf("bindings.yaml holds a %q", meta.Kind)
		}
		if err := yaml.UnmarshalStrict(doc, obj); err != nil {
			t.Fatalf("decode bindings.yaml: %v", err)
		}
		pi.objects = append(pi.objects, obj)
	}
	if len(pi.objects) != 6 {
		t.Fatalf("the policy install has %d objects, want 3 policies and 3 bindings", len(pi.objects))
	}
	pi.webhook, err = testenv.LocalWebhookConfiguration(filepath.Join(env.Root, testenv.WebhookManifest), env.WebhookURL, env.CABundle)
	if err != nil {
		t.Fatal(err)
	}
	entry := &pi.webhook.Webhooks[0]
	if entry.Name != "deployments.singleton.dev" {
		t.Fatalf("the first webhook entry is %s; the component's patch narrows /webhooks/0", entry.Name)
	}
	entry.MatchConditions = append(entry.MatchConditions, admissionregistrationv1.MatchCondition{
		Name: app.PolicyModeConditionName, Expression: patches.WebhookPolicyModeCondition(p),
	})
	return pi
}

// installPolicies creates or replaces the policies and their bindings.
func (pi *policyInstall) installPolicies(t *testing.T, env *testenv.Env) {
	t.Helper()
	ctx := ctxFor(t)
	for _, obj := range pi.objects {
		obj := obj.DeepCopyObject().(client.Object)
		err := env.Client.Create(ctx, obj)
		if apierrors.IsAlreadyExists(err) {
			old := obj.DeepCopyObject().(client.Object)
			if err = env.Client.Get(ctx, client.ObjectKeyFromObject(obj), old); err == nil {
				obj.SetResourceVersion(old.GetResourceVersion())
				err = env.Client.Update(ctx, obj)
			}
		}
		if err != nil {
			t.Fatalf("install %T %s: %v", obj, obj.GetName(), err)
		}
	}
}

// removePolicies deletes the policies and their bindings.
func (pi *policyInstall) removePolicies(t *testing.T, env *testenv.Env) {
	t.Helper()
	for i := len(pi.objects) - 1; i >= 0; i-- {
		obj := pi.objects[i].DeepCopyObject().(client.Object)
		if err := env.Client.Delete(ctxFor(t), obj); err != nil && !apierrors.IsNotFound(err) {
			t.Fatalf("delete %T %s: %v", obj, obj.GetName(), err)
		}
	}
}

// narrowWebhook installs the policy-mode webhook configuration.
func (pi *policyInstall) narrowWebhook(t *testing.T, env *testenv.Env) {
	t.Helper()
	if err := testenv.InstallWebhookConfiguration(ctxFor(t), env.Config, pi.webhook); err != nil {
		t.Fatal(err)
	}
}

// probe is a replicas-mode singleton a user would write.
func probe(ns, name string, annotations map[string]string) *appsv1.Deployment {
	a := map[string]string{patches.AnnotationSingleton: "true"}
	for k, v := range annotations {
		a[k] = v
	}
	return deployment(ns, name, 3, a)
}

// policyWarning is how the API server words a warning of the warnings policy.
func policyWarning(text string) string {
	return fmt.Sprintf("Validation failed for ValidatingAdmissionPolicy '%[1]s' with binding '%[1]s': %s", patches.WarningPolicyName, text)
}

// waitPoliciesActive waits until the API server applies the policies. The
// mutating policy runs before the webhooks: once it is in effect, a full
// webhook sees replicas already pinned and no longer warns about them. The
// warnings policy and its binding are created after the refusing ones, so
// the API server, which observes each kind in order, has those once it warns.
func waitPoliciesActive(t *testing.T, env *testenv.Env, ns string) {
	t.Helper()
	cs, w := warningClient(t, env)
	eventually(t, 30*time.Second, "the admission policies in effect", func() (bool, string) {
		w.reset()
		// Explicit mode and enforcement: whatever the cluster's defaults,
		// the probe is the policies'.
		got, err := dryRunCreate(t, cs, probe(ns, "policy-probe", map[string]string{
			patches.AnnotationMode: string(patches.ModeReplicas), patches.AnnotationEnforcement: string(patches.EnforcementMutate)}))
		if err != nil {
			return false, err.Error()
		}
		all := w.String()
		active := replicasOf(got) == "1" && strings.Contains(all, policyWarning("singleton: spec.replicas forced from 3")) &&
			!strings.Contains(all, "\nsingleton: spec.replicas") && !strings.HasPrefix(all, "singleton: spec.replicas")
		return active, all
	})
}

// waitWebhookHandlesAll waits until the webhook's full configuration is in
// effect: a deny-mode singleton is refused by the webhook (in the mutating
// phase) before the refusing policy sees it.
func waitWebhookHandlesAll(t *testing.T, env *testenv.Env, ns string) {
	t.Helper()
	eventually(t, 30*time.Second, "the webhook handling every singleton", func() (bool, string) {
		_, err := dryRunCreate(t, env.Clientset, probe(ns, "webhook-probe", map[string]string{patches.AnnotationEnforcement: "deny"}))
		if err == nil {
			return false, "a deny-mode Deployment of 3 replicas was admitted"
		}
		return strings.Contains(err.Error(), `admission webhook "deployments.singleton.dev" denied`), err.Error()
	})
}

func dryRunCreate(t *testing.T, cs kubernetes.Interface, d *appsv1.Deployment) (*appsv1.Deployment, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return cs.AppsV1().Deployments(d.Namespace).Create(ctx, d.DeepCopy(), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
}

// reset forgets the warnings collected so far.
func (w *warnings) reset() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.list = nil
}
