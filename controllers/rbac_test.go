package controllers

import (
	"context"
	"sort"
	"strings"
	"testing"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/singleton-webhook/singleton-webhook/patches"
)

// rbacState renders the namespace's Roles, RoleBindings and Leases, sorted:
// "role NAME: VERBS on leases/NAMES", "binding NAME→ROLE: SUBJECT",
// "lease NAME", each with " managed" when labelled.
func rbacState(t *testing.T, c client.Client) []string {
	t.Helper()
	ctx := context.Background()
	var out []string
	suffix := func(o metav1.Object) string {
		if managed(o) {
			return " managed"
		}
		return ""
	}
	var roles rbacv1.RoleList
	var bindings rbacv1.RoleBindingList
	var leases coordinationv1.LeaseList
	for _, l := range []client.ObjectList{&roles, &bindings, &leases} {
		if err := c.List(ctx, l, client.InNamespace("apps")); err != nil {
			t.Fatalf("list: %v", err)
		}
	}
	for _, r := range roles.Items {
		for _, rule := range r.Rules {
			out = append(out, "role "+r.Name+": "+strings.Join(rule.Verbs, ",")+" on "+
				strings.Join(rule.Resources, ",")+"/"+strings.Join(rule.ResourceNames, ",")+suffix(&r))
		}
	}
	for _, b := range bindings.Items {
		s := "binding " + b.Name + "→" + b.RoleRef.Kind + "/" + b.RoleRef.Name + ":"
		for _, sub := range b.Subjects {
			s += " " + sub.Namespace + "/" + sub.Name
		}
		out = append(out, s+suffix(&b))
	}
	for _, l := range leases.Items {
		out = append(out, "lease "+l.Name+suffix(&l))
	}
	sort.Strings(out)
	return out
}

func TestElectorRBACReconcile(t *testing.T) {
	withLease := map[string]string{patches.AnnotationSingleton: "true", patches.AnnotationMode: "election",
		patches.AnnotationLeaseName: "shared-lock"}
	own := func(name string) []string {
		return []string{
			"binding singleton-elector-" + name + "→Role/singleton-elector-" + name + ": apps/worker managed",
			"lease " + name + " managed",
			"role singleton-elector-" + name + ": get,update,watch on leases/" + name + " managed",
		}
	}
	// earlier is the owner of what a deleted Deployment "a" left behind.
	earlier := []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: "a",
		UID: "uid-earlier", Controller: ptr.To(true)}}
	tests := map[string]struct {
		objs []client.Object
		req  string
		want []string
		// wantEvent is the start of a Warning Event the Deployment must get.
		wantEvent string
	}{
		"an election-mode Deployment gets its Lease, and a Role on it alone bound to its ServiceAccount": {
			objs: []client.Object{deploy("a", election, "worker")}, req: "a", want: own("a"),
		},
		"the lease-name annotation names the Lease and the Role's resource": {
			objs: []client.Object{deploy("a", withLease, "worker")}, req: "a",
			want: []string{
				"binding singleton-elector-a→Role/singleton-elector-a: apps/worker managed",
				"lease shared-lock managed",
				"role singleton-elector-a: get,update,watch on leases/shared-lock managed",
			},
		},
		"a replicas-mode Deployment gets nothing, and loses what it had": {
			objs: []client.Object{deploy("a", replicas, "worker"),
				&rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "singleton-elector-a", Namespace: "apps",
					Labels: map[string]string{ManagedByLabel: ManagedBy}, OwnerReferences: controllerRef("a")}}},
			req: "a", want: nil,
		},
		"a deleted Deployment's objects are removed": {
			objs: []client.Object{&rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "singleton-elector-gone", Namespace: "apps",
				Labels: map[string]string{ManagedByLabel: ManagedBy}, OwnerReferences: controllerRef("gone")}}},
			req: "gone", want: nil,
		},
		"edited rules are restored": {
			objs: []client.Object{deploy("a", election, "worker"),
				&rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "singleton-elector-a", Namespace: "apps",
					Labels: map[string]string{ManagedByLabel: ManagedBy}, OwnerReferences: controllerRef("a")},
					Rules: []rbacv1.PolicyRule{{APIGroups: []string{"*"}, Resources: []string{"*"}, Verbs: []string{"*"}}}}},
			req: "a", want: own("a"),
		},
		"a Role of the same name the controller did not make is left alone": {
			objs: []client.Object{deploy("a", election, "worker"),
				&rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "singleton-elector-a", Namespace: "apps"},
					Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get"}}}}},
			req: "a",
			want: []string{
				"binding singleton-elector-a→Role/singleton-elector-a: apps/worker managed",
				"lease a managed",
				"role singleton-elector-a: get on pods/",
			},
			wantEvent: "Warning ElectorRBACConflict Role singleton-elector-a exists and is not managed by singleton-webhook; rename or delete it",
		},
		"a Lease of the name made by someone else is neither adopted nor granted": {
			objs: []client.Object{deploy("a", election, "worker"),
				&coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "a", Namespace: "apps"}}},
			req: "a", want: []string{"lease a"},
			wantEvent: "Warning ElectorLeaseConflict Lease a exists and is not managed by singleton-webhook; the sidecar gets no access to it",
		},
		"another singleton's Lease is not granted": {
			objs: []client.Object{deploy("a", withLease, "worker"),
				&coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "shared-lock", Namespace: "apps",
					Labels: map[string]string{ManagedByLabel: ManagedBy}, OwnerReferences: controllerRef("b")}}},
			req: "a", want: []string{"lease shared-lock managed"},
			wantEvent: "Warning ElectorLeaseConflict Lease shared-lock exists and was made by singleton-webhook for Deployment b, not for this Deployment",
		},
		"a labelled Lease without our owner (adopted by an older version) is not granted": {
			objs: []client.Object{deploy("a", election, "worker"),
				&coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "a", Namespace: "apps",
					Labels: map[string]string{ManagedByLabel: ManagedBy}}}},
			req: "a", want: []string{"lease a managed"},
			wantEvent: "Warning ElectorLeaseConflict Lease a exists and is not managed by singleton-webhook",
		},
		"a Lease left by an earlier Deployment of the name is neither deleted nor granted": {
			objs: []client.Object{deploy("a", election, "worker"),
				&coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "a", Namespace: "apps",
					Labels:          map[string]string{ManagedByLabel: ManagedBy},
					OwnerReferences: earlier}}},
			req: "a", want: []string{"lease a managed"},
			wantEvent: "Warning ElectorLeaseConflict Lease a exists and was made by singleton-webhook for an earlier Deployment a (uid uid-earlier)",
		},
		"a Role left by an earlier Deployment of the name is replaced": {
			objs: []client.Object{deploy("a", election, "worker"),
				&rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "singleton-elector-a", Namespace: "apps",
					Labels:          map[string]string{ManagedByLabel: ManagedBy},
					OwnerReferences: earlier},
					Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get"}}}}},
			req: "a", want: own("a"),
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c := newFakeClient(tc.objs...)
			rec := events.NewFakeRecorder(10)
			r := &ElectorRBAC{Client: c, Reader: c, Namespaces: c, Recorder: rec}
			for range 3 { // a replaced object is made on the next pass; the last must find nothing to do
				if _, err := r.Reconcile(context.Background(), ctrl.Request{NamespacedName: client.ObjectKey{Namespace: "apps", Name: tc.req}}); err != nil {
					t.Fatalf("reconcile: %v", err)
				}
			}
			if got := rbacState(t, c); strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("objects:\n got %q\nwant %q", got, tc.want)
			}
			var warnings []string
			for len(rec.Events) > 0 {
				if e := <-rec.Events; strings.HasPrefix(e, "Warning") {
					warnings = append(warnings, e)
				}
			}
			if tc.wantEvent == "" && len(warnings) > 0 {
				t.Errorf("warnings %q, want none", warnings)
			}
			if tc.wantEvent != "" && (len(warnings) == 0 || !strings.HasPrefix(warnings[0], tc.wantEvent)) {
				t.Errorf("warnings %q, want one starting %q", warnings, tc.wantEvent)
			}
		})
	}
}

func TestElectionControllersOutOfScope(t *testing.T) {
	for name, ns := range map[string]*corev1.Namespace{
		"a namespace labelled out": {ObjectMeta: metav1.ObjectMeta{Name: "apps", Labels: map[string]string{OptOutLabel: OptOutValue}}},
		"an excluded namespace":    {ObjectMeta: metav1.ObjectMeta{Name: "apps"}},
	} {
		t.Run(name, func(t *testing.T) {
			scope := DefaultScope("")
			if ns.Labels == nil {
				scope = DefaultScope("apps")
			}
			c := newFakeClient(ns, deploy("a", withLeaderService, "worker", corev1.ContainerPort{ContainerPort: 80}))
			req := ctrl.Request{NamespacedName: client.ObjectKey{Namespace: "apps", Name: "a"}}
			rbac := &ElectorRBAC{Client: c, Reader: c, Namespaces: c, Scope: scope, Recorder: events.NewFakeRecorder(10)}
			svc := &LeaderService{Client: c, Reader: c, Deployments: c, Namespaces: c, Scope: scope, Recorder: events.NewFakeRecorder(10)}
			for _, r := range []reconcile.Reconciler{rbac, svc} {
				if _, err := r.Reconcile(context.Background(), req); err != nil {
					t.Fatalf("reconcile: %v", err)
				}
			}
			if got := rbacState(t, c); len(got) != 0 {
				t.Errorf("objects %q, want none", got)
			}
			var svcs corev1.ServiceList
			if err := c.List(context.Background(), &svcs); err != nil || len(svcs.Items) != 0 {
				t.Errorf("services %d (%v), want none", len(svcs.Items), err)
			}
		})
	}
}
