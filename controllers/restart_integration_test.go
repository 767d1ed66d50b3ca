//go:build integration

package controllers_test

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/singleton-webhook/singleton-webhook/controllers"
	"github.com/singleton-webhook/singleton-webhook/patches"
)

// TestElectionControllersCleanUpAtStart: a Deployment that left election
// mode while the election controllers were stopped loses, once they start
// again, the Role, the binding and the leader Service they made for it:
// listed at start, those objects queue it, as its own listing does not
// (electionEvents).
func TestElectionControllersCleanUpAtStart(t *testing.T) {
	p := patches.Policy{}
	env := startWebhookOnly(t, p)
	stop := startElectionControllers(t, env, p)
	t.Cleanup(stop)
	ns := newNamespace(t, env)
	d := electionDeployment(ns, "api", "", 2, map[string]string{patches.AnnotationLeaderService: "true"},
		corev1.ContainerPort{Name: "http", ContainerPort: 8080})
	if err := env.Client.Create(ctxFor(t), d); err != nil {
		t.Fatalf("create deployment: %v", err)
	}
	rbacName := controllers.RoleBindingPrefix + "api"
	waitObject(t, env, ns, "api", &coordinationv1.Lease{})
	waitObject(t, env, ns, rbacName, &rbacv1.Role{})
	waitObject(t, env, ns, rbacName, &rbacv1.RoleBinding{})
	waitObject(t, env, ns, "api"+patches.LeaderServiceSuffix, &corev1.Service{})

	stop()
	updateDeployment(t, env, ns, "api", func(d *appsv1.Deployment) {
		d.Annotations[patches.AnnotationMode] = string(patches.ModeReplicas)
	})
	// Nothing removes them while the controllers are stopped.
	for _, o := range []client.Object{&rbacv1.Role{}, &rbacv1.RoleBinding{}} {
		if err := env.Client.Get(ctxFor(t), client.ObjectKey{Namespace: ns, Name: rbacName}, o); err != nil {
			t.Fatalf("%T gone while the controllers were stopped: %v", o, err)
		}
	}

	t.Cleanup(startElectionControllers(t, env, p))
	waitGone(t, env, ns, rbacName, &rbacv1.Role{})
	waitGone(t, env, ns, rbacName, &rbacv1.RoleBinding{})
	waitGone(t, env, ns, "api"+patches.LeaderServiceSuffix, &corev1.Service{})
}
