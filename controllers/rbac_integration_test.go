//go:build integration

package controllers_test

import (
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/singleton-webhook/singleton-webhook/controllers"
	"github.com/singleton-webhook/singleton-webhook/internal/testenv"
	"github.com/singleton-webhook/singleton-webhook/patches"
)

func TestElectorRBACIntegration(t *testing.T) {
	p := patches.Policy{}
	env := startElection(t, p)
	ns := newNamespace(t, env)

	t.Run("an election-mode Deployment comes back from the API server injected", func(t *testing.T) {
		d := electionDeployment(ns, "worker", "worker", 2, nil)
		if err := env.Client.Create(ctxFor(t), d); err != nil {
			t.Fatalf("create deployment: %v", err)
		}
		if d.Spec.Template.Annotations[patches.AnnotationInjected] == "" ||
			len(d.Spec.Template.Spec.InitContainers) != 1 ||
			d.Spec.Template.Spec.InitContainers[0].Name != patches.ElectorContainerName {
			t.Fatalf("not injected: annotations %v, init containers %d", d.Spec.Template.Annotations, len(d.Spec.Template.Spec.InitContainers))
		}
		// The stored object, defaulted by the API server, is a fixed point:
		// the webhook's reinvocation and the drift controller change nothing.
		again := d.DeepCopy()
		res, err := patches.Apply(again, p)
		if err != nil || len(res.Warnings) != 0 || !equality.Semantic.DeepEqual(d, again) {
			t.Errorf("applying the policy to the stored Deployment: err %v, warnings %q, changed %t",
				err, res.Warnings, !equality.Semantic.DeepEqual(d, again))
		}
	})

	t.Run("a plain-container injection is a fixed point of the API server's defaulting too", func(t *testing.T) {
		// The webhook skips namespaces labelled singleton.dev/webhook=disabled,
		// so the object stored is exactly what Apply made, then defaulted.
		off := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "webhook-off-",
			Labels: map[string]string{"singleton.dev/webhook": "disabled"}}}
		if err := env.Client.Create(ctxFor(t), off); err != nil {
			t.Fatalf("create namespace: %v", err)
		}
		plain := patches.Policy{Elector: patches.ElectorOptions{PlainContainer: true}}
		d := electionDeployment(off.Name, "plain", "", 2, nil)
		if _, err := patches.Apply(d, plain); err != nil {
			t.Fatalf("apply: %v", err)
		}
		if err := env.Client.Create(ctxFor(t), d); err != nil {
			t.Fatalf("create deployment: %v", err)
		}
		again := d.DeepCopy()
		res, err := patches.Apply(again, plain)
		if err != nil || len(res.Warnings) != 0 || !equality.Semantic.DeepEqual(d, again) {
			t.Errorf("applying the policy to the stored Deployment: err %v, warnings %q, changed %t",
				err, res.Warnings, !equality.Semantic.DeepEqual(d, again))
		}
	})

	t.Run("its ServiceAccount is bound to the elector role, and only in its namespace", func(t *testing.T) {
		rb := waitBinding(t, env, ns, "worker")
		if !equality.Semantic.DeepEqual(rb.Subjects, []rbacv1.Subject{{Kind: "ServiceAccount", Name: "worker", Namespace: ns}}) ||
			rb.RoleRef.Name != controllers.ElectorClusterRole || rb.Labels[controllers.ManagedByLabel] != controllers.ManagedBy {
			t.Errorf("binding: subjects %+v, roleRef %+v, labels %v", rb.Subjects, rb.RoleRef, rb.Labels)
		}
		sa := "system:serviceaccount:" + ns + ":worker"
		for _, c := range []struct {
			ns, verb, group, resource string
			want                      bool
		}{
			{ns, "get", "coordination.k8s.io", "leases", true},
			{ns, "create", "coordination.k8s.io", "leases", true},
			{ns, "update", "coordination.k8s.io", "leases", true},
			{ns, "watch", "coordination.k8s.io", "leases", true},
			{ns, "get", "", "pods", true},
			{ns, "patch", "", "pods", true},
			{ns, "delete", "coordination.k8s.io", "leases", false},
			{ns, "delete", "", "pods", false},
			{"default", "update", "coordination.k8s.io", "leases", false},
		} {
			if got := allowed(t, env, sa, ns, c.ns, c.verb, c.group, c.resource); got != c.want {
				t.Errorf("%s may %s %s in %s: %t, want %t", sa, c.verb, c.resource, c.ns, got, c.want)
			}
		}
	})

	t.Run("a deleted binding is re-created", func(t *testing.T) {
		rb := waitBinding(t, env, ns, "worker")
		if err := env.Client.Delete(ctxFor(t), rb); err != nil {
			t.Fatalf("delete binding: %v", err)
		}
		eventually(t, "binding re-created", func() (bool, string) {
			got := &rbacv1.RoleBinding{}
			err := env.Client.Get(ctxFor(t), client.ObjectKeyFromObject(rb), got)
			return err == nil && got.UID != rb.UID, "get: " + errString(err)
		})
	})

	t.Run("an edited binding is restored", func(t *testing.T) {
		rb := waitBinding(t, env, ns, "worker")
		rb.Subjects[0].Name = "intruder"
		if err := env.Client.Update(ctxFor(t), rb); err != nil {
			t.Fatalf("edit binding: %v", err)
		}
		eventually(t, "subjects restored", func() (bool, string) {
			got := &rbacv1.RoleBinding{}
			err := env.Client.Get(ctxFor(t), client.ObjectKeyFromObject(rb), got)
			return err == nil && got.Subjects[0].Name == "worker", "subjects: " + errString(err)
		})
	})

	t.Run("the binding stays while another Deployment uses the ServiceAccount", func(t *testing.T) {
		if err := env.Client.Create(ctxFor(t), electionDeployment(ns, "worker-2", "worker", 2, nil)); err != nil {
			t.Fatalf("create deployment: %v", err)
		}
		deleteDeployment(t, env, ns, "worker")
		rb := waitBinding(t, env, ns, "worker")
		time.Sleep(time.Second) // room for the controller to (wrongly) remove it
		if err := env.Client.Get(ctxFor(t), client.ObjectKeyFromObject(rb), &rbacv1.RoleBinding{}); err != nil {
			t.Errorf("binding gone while worker-2 uses it: %v", err)
		}
	})

	t.Run("switching the last user to replicas mode removes the sidecar and the binding", func(t *testing.T) {
		updateDeployment(t, env, ns, "worker-2", func(d *appsv1.Deployment) {
			d.Annotations[patches.AnnotationMode] = string(patches.ModeReplicas)
		})
		d := &appsv1.Deployment{}
		if err := env.Client.Get(ctxFor(t), client.ObjectKey{Namespace: ns, Name: "worker-2"}, d); err != nil {
			t.Fatalf("get deployment: %v", err)
		}
		if len(d.Spec.Template.Spec.InitContainers) != 0 || d.Spec.Template.Annotations[patches.AnnotationInjected] != "" {
			t.Errorf("sidecar still injected after the switch to replicas mode")
		}
		waitNoBinding(t, env, ns, "worker")
	})

	t.Run("deleting the last Deployment using a ServiceAccount removes its binding", func(t *testing.T) {
		if err := env.Client.Create(ctxFor(t), electionDeployment(ns, "cron", "", 2, nil)); err != nil {
			t.Fatalf("create deployment: %v", err)
		}
		waitBinding(t, env, ns, "default")
		deleteDeployment(t, env, ns, "cron")
		waitNoBinding(t, env, ns, "default")
	})
}

func waitBinding(t *testing.T, env *testenv.Env, ns, sa string) *rbacv1.RoleBinding {
	t.Helper()
	rb := &rbacv1.RoleBinding{}
	key := client.ObjectKey{Namespace: ns, Name: controllers.RoleBindingPrefix + sa}
	eventually(t, "binding "+key.Name, func() (bool, string) {
		err := env.Client.Get(ctxFor(t), key, rb)
		return err == nil, "get: " + errString(err)
	})
	return rb
}

func waitNoBinding(t *testing.T, env *testenv.Env, ns, sa string) {
	t.Helper()
	key := client.ObjectKey{Namespace: ns, Name: controllers.RoleBindingPrefix + sa}
	eventually(t, "binding "+key.Name+" removed", func() (bool, string) {
		err := env.Client.Get(ctxFor(t), key, &rbacv1.RoleBinding{})
		return apierrors.IsNotFound(err), "get: " + errString(err)
	})
}

func deleteDeployment(t *testing.T, env *testenv.Env, ns, name string) {
	t.Helper()
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	if err := env.Client.Delete(ctxFor(t), d); err != nil {
		t.Fatalf("delete deployment %s: %v", name, err)
	}
}

// allowed asks the API server whether a ServiceAccount of saNS may do verb
// on resource in ns.
func allowed(t *testing.T, env *testenv.Env, user, saNS, ns, verb, group, resource string) bool {
	t.Helper()
	sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User:   user,
		Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + saNS, "system:authenticated"},
		ResourceAttributes: &authorizationv1.ResourceAttributes{
			Namespace: ns, Verb: verb, Group: group, Resource: resource},
	}}
	got, err := env.Clientset.AuthorizationV1().SubjectAccessReviews().Create(ctxFor(t), sar, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("subject access review: %v", err)
	}
	return got.Status.Allowed
}

func errString(err error) string {
	if err == nil {
		return "no error"
	}
	return err.Error()
}
