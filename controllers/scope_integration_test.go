//go:build integration

package controllers_test

import (
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/singleton-webhook/singleton-webhook/controllers"
	"github.com/singleton-webhook/singleton-webhook/patches"
)

// TestElectionControllersActOnlyWhereAdmissionApplies creates annotated
// election-mode Deployments where the webhook configuration sends nothing
// to admission (a namespace labelled out, kube-system): the controllers
// make no Lease, Role, RoleBinding or leader Service for them, while the
// same Deployment in an ordinary namespace gets all four. Opting the
// namespace back in brings them.
func TestElectionControllersActOnlyWhereAdmissionApplies(t *testing.T) {
	env := startElection(t, patches.Policy{})
	off := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "opted-out-",
		Labels: map[string]string{controllers.OptOutLabel: controllers.OptOutValue}}}
	if err := env.Client.Create(ctxFor(t), off); err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	service := map[string]string{patches.AnnotationLeaderService: "true"}
	outside := []string{off.Name, "kube-system"}
	for _, ns := range outside {
		d := electionDeployment(ns, "scoped-out", "", 2, service)
		if err := env.Client.Create(ctxFor(t), d); err != nil {
			t.Fatalf("create deployment in %s: %v", ns, err)
		}
		t.Cleanup(func() { _ = env.Client.Delete(ctxFor(t), d) })
	}
	// The same Deployment where admission applies, created last: once its
	// objects exist, the controllers have seen the others.
	in := newNamespace(t, env)
	if err := env.Client.Create(ctxFor(t), electionDeployment(in, "scoped-out", "", 2, service)); err != nil {
		t.Fatalf("create deployment: %v", err)
	}
	for _, o := range kept("scoped-out") {
		waitObject(t, env, in, o.GetName(), o)
	}
	time.Sleep(time.Second)
	for _, ns := range outside {
		for _, o := range kept("scoped-out") {
			err := env.Client.Get(ctxFor(t), client.ObjectKey{Namespace: ns, Name: o.GetName()}, o)
			if !apierrors.IsNotFound(err) {
				t.Errorf("%s: %T %s: %v, want none", ns, o, o.GetName(), errString(err))
			}
		}
	}

	t.Run("a namespace opted back in gets its objects", func(t *testing.T) {
		ns := &corev1.Namespace{}
		if err := env.Client.Get(ctxFor(t), client.ObjectKey{Name: off.Name}, ns); err != nil {
			t.Fatalf("get namespace: %v", err)
		}
		delete(ns.Labels, controllers.OptOutLabel)
		if err := env.Client.Update(ctxFor(t), ns); err != nil {
			t.Fatalf("opt the namespace back in: %v", err)
		}
		for _, o := range kept("scoped-out") {
			waitObject(t, env, off.Name, o.GetName(), o)
		}
	})
}

// kept are the objects the election controllers keep for a Deployment
// named name with a leader Service, empty but for their names.
func kept(name string) []client.Object {
	m := func(n string) metav1.ObjectMeta { return metav1.ObjectMeta{Name: n} }
	return []client.Object{
		&coordinationv1.Lease{ObjectMeta: m(name)},
		&rbacv1.Role{ObjectMeta: m(controllers.RoleBindingPrefix + name)},
		&rbacv1.RoleBinding{ObjectMeta: m(controllers.RoleBindingPrefix + name)},
		&corev1.Service{ObjectMeta: m(name + patches.LeaderServiceSuffix)},
	}
}
