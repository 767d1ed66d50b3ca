//go:build integration

package integration

import (
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/singleton-webhook/singleton-webhook/internal/testenv"
	"github.com/singleton-webhook/singleton-webhook/patches"
)

// TestPolicyFaults: in policy mode, with no webhook answering at all, a
// Deployment of 200 containers is made a singleton within the CEL cost
// limits; and when the mutating policy cannot be evaluated (here: its cost
// limit exceeded), the write is refused with the policy named, never
// admitted un-mutated.
func TestPolicyFaults(t *testing.T) {
	env := testenv.Start(t, testenv.Options{SkipWebhookConfiguration: true})
	pi := newPolicyInstall(t, env, patches.Policy{})
	pi.installPolicies(t, env)
	pi.narrowWebhook(t, env)
	ns := newNamespace(t, env)
	waitPoliciesActive(t, env, ns)

	t.Run("200 containers are mutated", func(t *testing.T) {
		d := bigDeployment(ns, "huge", 200)
		got, err := env.Clientset.AppsV1().Deployments(ns).Create(ctxFor(t), d, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("create a singleton of 200 containers: %v", err)
		}
		assertPolicyMutated(t, got)
	})

	t.Run("an evaluation failure refuses the write", func(t *testing.T) {
		// The mutating policy made to exceed its cost limit on a large pod
		// template: 200³ steps of a comprehension.
		m := pi.objects[0].DeepCopyObject().(*admissionregistrationv1.MutatingAdmissionPolicy)
		patch := m.Spec.Mutations[0].JSONPatch
		patch.Expression = "object.spec.template.spec.containers.all(a, object.spec.template.spec.containers.all(b, " +
			"object.spec.template.spec.containers.all(c, a.name + b.name + c.name != ''))) ? (" + patch.Expression + ") : []"
		faulty := &policyInstall{objects: []client.Object{m}}
		faulty.installPolicies(t, env)
		t.Cleanup(func() { pi.installPolicies(t, env) })
		d := bigDeployment(ns, "huge-faulty", 200)
		eventually(t, 30*time.Second, "the faulty policy in effect", func() (bool, string) {
			_, err := dryRunCreate(t, env.Clientset, d)
			return err != nil, "admitted"
		})
		_, err := env.Clientset.AppsV1().Deployments(ns).Create(ctxFor(t), d, metav1.CreateOptions{})
		if err == nil || !strings.Contains(err.Error(), "'"+patches.MutatingPolicyName+"'") {
			t.Fatalf("got %v; want a refusal naming the policy %s", err, patches.MutatingPolicyName)
		}
		t.Logf("refused: %v", err)
		if _, err := env.Clientset.AppsV1().Deployments(ns).Get(ctxFor(t), d.Name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("the refused Deployment is stored (get: %v)", err)
		}
		small := probe(ns, "small", nil)
		got, err := env.Clientset.AppsV1().Deployments(ns).Create(ctxFor(t), small, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("a one-container singleton, within the cost limit, is refused: %v", err)
		}
		assertPolicyMutated(t, got)
	})
}

// assertPolicyMutated fails unless d is stored as a replicas-mode
// singleton: pinned, gated and labelled.
func assertPolicyMutated(t *testing.T, d *appsv1.Deployment) {
	t.Helper()
	assertPinned(t, d)
	if got := d.Spec.Template.Labels[patches.LabelDeployment]; got != d.Name {
		t.Errorf("deployment %s: pod label %s=%q, want %q", d.Name, patches.LabelDeployment, got, d.Name)
	}
	gates := d.Spec.Template.Spec.SchedulingGates
	if len(gates) == 0 || gates[len(gates)-1].Name != patches.GateOneAtATime {
		t.Errorf("deployment %s: scheduling gates %v, want %s last", d.Name, gates, patches.GateOneAtATime)
	}
	if d.Annotations[patches.AnnotationOriginalReplicas] == "" || d.Annotations[patches.AnnotationOriginalStrategy] == "" {
		t.Errorf("deployment %s: annotations %v lack the original-* records", d.Name, d.Annotations)
	}
}
