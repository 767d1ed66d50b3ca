package controllers

import (
	"context"
	"sort"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/singleton-webhook/singleton-webhook/patches"
)

// binding is a RoleBinding in namespace "apps"; managedBy adds our label.
func binding(name, role, subject string, managedBy bool) *rbacv1.RoleBinding {
	rb := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "apps"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: subject, Namespace: "apps"}},
	}
	if managedBy {
		rb.Labels = map[string]string{ManagedByLabel: ManagedBy}
	}
	return rb
}

// bindingState renders the namespace's RoleBindings as
// "name→role:subject[ managed]", sorted.
func bindingState(t *testing.T, c client.Client) []string {
	t.Helper()
	var list rbacv1.RoleBindingList
	if err := c.List(context.Background(), &list, client.InNamespace("apps")); err != nil {
		t.Fatalf("list role bindings: %v", err)
	}
	var out []string
	for _, rb := range list.Items {
		s := rb.Name + "→" + rb.RoleRef.Name + ":"
		for _, sub := range rb.Subjects {
			s += sub.Namespace + "/" + sub.Name
		}
		if managed(&rb) {
			s += " managed"
		}
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

func TestElectorRBACReconcile(t *testing.T) {
	tests := map[string]struct {
		objs []client.Object
		want []string
	}{
		"an election-mode Deployment without a ServiceAccount binds default": {
			objs: []client.Object{deploy("a", election, "")},
			want: []string{"singleton-elector-default→singleton-elector:apps/default managed"},
		},
		"two Deployments sharing a ServiceAccount get one binding": {
			objs: []client.Object{deploy("a", election, "worker"), deploy("b", election, "worker"), deploy("c", election, "cron")},
			want: []string{
				"singleton-elector-cron→singleton-elector:apps/cron managed",
				"singleton-elector-worker→singleton-elector:apps/worker managed",
			},
		},
		"replicas-mode and ordinary Deployments get none": {
			objs: []client.Object{deploy("a", replicas, "worker"), deploy("b", notASingleton, "worker")},
			want: nil,
		},
		"a binding no Deployment needs any more is removed": {
			objs: []client.Object{deploy("a", replicas, "worker"),
				binding("singleton-elector-worker", ElectorClusterRole, "worker", true)},
			want: nil,
		},
		"bindings without our label are never removed": {
			objs: []client.Object{binding("singleton-elector-worker", ElectorClusterRole, "worker", false),
				binding("team-admin", "admin", "alice", false)},
			want: []string{
				"singleton-elector-worker→singleton-elector:apps/worker",
				"team-admin→admin:apps/alice",
			},
		},
		"edited subjects are restored": {
			objs: []client.Object{deploy("a", election, "worker"),
				binding("singleton-elector-worker", ElectorClusterRole, "intruder", true)},
			want: []string{"singleton-elector-worker→singleton-elector:apps/worker managed"},
		},
		"an unlabelled binding of our name and role is adopted": {
			objs: []client.Object{deploy("a", election, "worker"),
				binding("singleton-elector-worker", ElectorClusterRole, "worker", false)},
			want: []string{"singleton-elector-worker→singleton-elector:apps/worker managed"},
		},
		"an unlabelled binding of our name to another role is left alone": {
			objs: []client.Object{deploy("a", election, "worker"),
				binding("singleton-elector-worker", "admin", "bob", false)},
			want: []string{"singleton-elector-worker→admin:apps/bob"},
		},
		"our binding pointing at another role is replaced": {
			objs: []client.Object{deploy("a", election, "worker"),
				binding("singleton-elector-worker", "view", "worker", true)},
			want: []string{"singleton-elector-worker→singleton-elector:apps/worker managed"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c := newFakeClient(tc.objs...)
			r := &ElectorRBAC{Client: c, Reader: c, Deployments: c, Owned: labelled{c},
				Recorder: events.NewFakeRecorder(10)}
			for range 2 { // the second pass must find nothing to do
				if _, err := r.Reconcile(context.Background(), ctrl.Request{NamespacedName: client.ObjectKey{Namespace: "apps"}}); err != nil {
					t.Fatalf("reconcile: %v", err)
				}
			}
			got := bindingState(t, c)
			if len(got) != len(tc.want) {
				t.Fatalf("bindings:\n got %q\nwant %q", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("binding %d:\n got %s\nwant %s", i, got[i], tc.want[i])
				}
			}
		})
	}
}

func TestElectorRBACRecordsEvents(t *testing.T) {
	c := newFakeClient(deploy("a", election, "worker"))
	rec := events.NewFakeRecorder(10)
	r := &ElectorRBAC{Client: c, Reader: c, Deployments: c, Owned: labelled{c}, Recorder: rec}
	if _, err := r.Reconcile(context.Background(), ctrl.Request{NamespacedName: client.ObjectKey{Namespace: "apps"}}); err != nil {
		t.Fatalf("reconcile: %v", err)
	}
	select {
	case e := <-rec.Events:
		want := "Normal ElectorRBACBound RoleBinding singleton-elector-worker grants ServiceAccount worker the ClusterRole singleton-elector the leader-election sidecar needs"
		if e != want {
			t.Errorf("event:\n got %s\nwant %s", e, want)
		}
	default:
		t.Error("no Event recorded for the new binding")
	}
}

func TestElectorRBACPolicyDefaultMode(t *testing.T) {
	c := newFakeClient(deploy("a", map[string]string{patches.AnnotationSingleton: "true"}, "worker"))
	r := &ElectorRBAC{Client: c, Reader: c, Deployments: c, Owned: labelled{c},
		Policy: patches.Policy{DefaultMode: patches.ModeElection}, Recorder: events.NewFakeRecorder(10)}
	if _, err := r.Reconcile(context.Background(), ctrl.Request{NamespacedName: client.ObjectKey{Namespace: "apps"}}); err != nil {
		t.Fatalf("reconcile: %v", err)
	}
	if got := bindingState(t, c); len(got) != 1 || got[0] != "singleton-elector-worker→singleton-elector:apps/worker managed" {
		t.Errorf("bindings %q, want the worker's", got)
	}
}

// countingReader counts the full reads the RBAC controller makes.
type countingReader struct {
	client.Reader
	gets int
}

func (c *countingReader) Get(ctx context.Context, key client.ObjectKey, o client.Object, opts ...client.GetOption) error {
	c.gets++
	return c.Reader.Get(ctx, key, o, opts...)
}

func TestElectorRBACReadsOnlyChangedSpecs(t *testing.T) {
	d := deploy("a", election, "worker")
	d.Generation = 1
	c := newFakeClient(d)
	reads := &countingReader{Reader: c}
	r := &ElectorRBAC{Client: c, Reader: reads, Deployments: c, Owned: labelled{c}, Recorder: events.NewFakeRecorder(10)}
	reconcile := func() {
		t.Helper()
		if _, err := r.Reconcile(context.Background(), ctrl.Request{NamespacedName: client.ObjectKey{Namespace: "apps"}}); err != nil {
			t.Fatalf("reconcile: %v", err)
		}
	}
	reconcile()
	reconcile()
	if reads.gets != 1 {
		t.Errorf("%d full reads of an unchanged Deployment over two passes, want 1", reads.gets)
	}
	d = getDeployment(t, c, "a")
	d.Spec.Template.Spec.ServiceAccountName = "cron"
	d.Generation++
	if err := c.Update(context.Background(), d); err != nil {
		t.Fatalf("update deployment: %v", err)
	}
	reconcile()
	if reads.gets != 2 {
		t.Errorf("%d full reads after a spec change, want 2", reads.gets)
	}
	if got := bindingState(t, c); len(got) != 1 || got[0] != "singleton-elector-cron→singleton-elector:apps/cron managed" {
		t.Errorf("bindings %q, want only cron's", got)
	}
}
