//go:build integration

package controllers_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	eventsv1 "k8s.io/api/events/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/singleton-webhook/singleton-webhook/controllers"
	"github.com/singleton-webhook/singleton-webhook/internal/testenv"
	"github.com/singleton-webhook/singleton-webhook/patches"
)

// TestLeaseNotOursIsNeverGranted points singleton.dev/lease-name at a Lease
// the webhook did not make for the Deployment: one another component
// created, and another singleton's. The webhook must not lend its powers:
// the Deployment's ServiceAccount gets no access to the Lease (the API
// server's SubjectAccessReview says no), the Lease is unchanged, and a
// Warning Event on the Deployment says why.
func TestLeaseNotOursIsNeverGranted(t *testing.T) {
	env := startElection(t, patches.Policy{})
	ns := newNamespace(t, env)
	// The first singleton, for the "another singleton's Lease" case; its
	// Role and binding are the sign that the controller is running.
	if err := env.Client.Create(ctxFor(t), electionDeployment(ns, "first", "first", 2, nil)); err != nil {
		t.Fatalf("create deployment: %v", err)
	}
	waitObject(t, env, ns, controllers.RoleBindingPrefix+"first", &rbacv1.RoleBinding{})
	theirs := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "kube-thing", Namespace: ns,
		Labels: map[string]string{"app": "kube-thing"}}}
	if err := env.Client.Create(ctxFor(t), theirs); err != nil {
		t.Fatalf("create a Lease of another component: %v", err)
	}

	for name, tc := range map[string]struct{ deployment, lease, event string }{
		"a Lease another component created": {deployment: "thief", lease: "kube-thing",
			event: "Lease kube-thing exists and is not managed by singleton-webhook; the sidecar gets no access to it"},
		"another singleton's Lease": {deployment: "second", lease: "first",
			event: "Lease first exists and was made by singleton-webhook for Deployment first, not for this Deployment"},
	} {
		t.Run(name, func(t *testing.T) {
			before := &coordinationv1.Lease{}
			if err := env.Client.Get(ctxFor(t), client.ObjectKey{Namespace: ns, Name: tc.lease}, before); err != nil {
				t.Fatalf("get lease: %v", err)
			}
			d := electionDeployment(ns, tc.deployment, tc.deployment, 2, map[string]string{patches.AnnotationLeaseName: tc.lease})
			if err := env.Client.Create(ctxFor(t), d); err != nil {
				t.Fatalf("create deployment: %v", err)
			}
			eventually(t, "a Warning Event naming the conflict", func() (bool, string) {
				return warned(t, env, ns, tc.deployment, "ElectorLeaseConflict", tc.event)
			})
			// The controller has decided; give it a moment to do anything
			// it might still do wrong, then look.
			time.Sleep(time.Second)
			if allowed(t, env, ns, tc.deployment, "update", tc.lease) || allowed(t, env, ns, tc.deployment, "get", tc.lease) {
				t.Errorf("the ServiceAccount of %s may use Lease %s, want no access", tc.deployment, tc.lease)
			}
			after := &coordinationv1.Lease{}
			if err := env.Client.Get(ctxFor(t), client.ObjectKey{Namespace: ns, Name: tc.lease}, after); err != nil {
				t.Fatalf("get lease: %v", err)
			}
			if after.ResourceVersion != before.ResourceVersion || !equality.Semantic.DeepEqual(after.Labels, before.Labels) ||
				!equality.Semantic.DeepEqual(after.OwnerReferences, before.OwnerReferences) {
				t.Errorf("Lease %s changed: labels %v owners %v (was %v, %v)", tc.lease, after.Labels, after.OwnerReferences,
					before.Labels, before.OwnerReferences)
			}
			for _, o := range []client.Object{&rbacv1.Role{}, &rbacv1.RoleBinding{}} {
				err := env.Client.Get(ctxFor(t), client.ObjectKey{Namespace: ns, Name: controllers.RoleBindingPrefix + tc.deployment}, o)
				if !apierrors.IsNotFound(err) {
					t.Errorf("%T for %s: %v, want none", o, tc.deployment, err)
				}
			}
		})
	}

	t.Run("the Lease's own singleton keeps its access", func(t *testing.T) {
		if !allowed(t, env, ns, "first", "update", "first") {
			t.Error("the ServiceAccount of first may not update its own Lease")
		}
	})
}

// allowed asks the API server whether the ServiceAccount ns/sa may verb the
// Lease ns/lease.
func allowed(t *testing.T, env *testenv.Env, ns, sa, verb, lease string) bool {
	t.Helper()
	sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User:   fmt.Sprintf("system:serviceaccount:%s:%s", ns, sa),
		Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"},
		ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: ns, Verb: verb,
			Group: coordinationv1.GroupName, Resource: "leases", Name: lease},
	}}
	got, err := env.Clientset.AuthorizationV1().SubjectAccessReviews().Create(ctxFor(t), sar, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("SubjectAccessReview: %v", err)
	}
	return got.Status.Allowed
}

// warned reports whether the Deployment ns/name has a Warning Event of that
// reason whose note starts with note.
func warned(t *testing.T, env *testenv.Env, ns, name, reason, note string) (bool, string) {
	t.Helper()
	var list eventsv1.EventList
	if err := env.Client.List(ctxFor(t), &list, client.InNamespace(ns)); err != nil {
		return false, err.Error()
	}
	var seen []string
	for _, e := range list.Items {
		if e.Regarding.Kind != "Deployment" || e.Regarding.Name != name {
			continue
		}
		seen = append(seen, e.Type+" "+e.Reason+" "+e.Note)
		if e.Type == "Warning" && e.Reason == reason && strings.HasPrefix(e.Note, note) {
			return true, ""
		}
	}
	return false, fmt.Sprintf("events of %s: %q", name, seen)
}
