package controllers

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/singleton-webhook/singleton-webhook/internal/sidecar"
	"github.com/singleton-webhook/singleton-webhook/patches"
)

func TestRoleLabelFollowsTheLease(t *testing.T) {
	now := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	pod := func(name, role string) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "apps",
			Labels: map[string]string{patches.LabelDeployment: "a"}}}
		if role != "" {
			p.Labels[sidecar.RoleLabel] = role
		}
		return p
	}
	lease := func(holder string, renewed time.Time) *coordinationv1.Lease {
		d := int32(15)
		return &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Name: "a", Namespace: "apps", Labels: map[string]string{ManagedByLabel: ManagedBy},
				OwnerReferences: controllerRef("a")},
			Spec: coordinationv1.LeaseSpec{HolderIdentity: &holder, LeaseDurationSeconds: &d,
				RenewTime: &metav1.MicroTime{Time: renewed}},
		}
	}
	tests := map[string]struct {
		lease       *coordinationv1.Lease
		pods        []*corev1.Pod
		want        map[string]string
		wantRequeue time.Duration
	}{
		"the holder of a valid Lease leads, the others stand by": {
			lease: lease("a-1", now.Add(-5*time.Second)), pods: []*corev1.Pod{pod("a-1", ""), pod("a-2", "leader"), pod("a-3", "")},
			want: map[string]string{"a-1": "leader", "a-2": "standby", "a-3": "standby"}, wantRequeue: 10 * time.Second,
		},
		"a leader whose Lease expired turns standby, though it cannot renew": {
			lease: lease("a-1", now.Add(-15*time.Second)), pods: []*corev1.Pod{pod("a-1", "leader"), pod("a-2", "standby")},
			want: map[string]string{"a-1": "standby", "a-2": "standby"},
		},
		"a released Lease leaves no leader": {
			lease: lease("", now), pods: []*corev1.Pod{pod("a-1", "leader")},
			want: map[string]string{"a-1": "standby"},
		},
		"no Lease yet: every Pod stands by": {
			pods: []*corev1.Pod{pod("a-1", "")},
			want: map[string]string{"a-1": "standby"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			objs := []client.Object{deploy("a", election, "worker")}
			if tc.lease != nil {
				objs = append(objs, tc.lease)
			}
			for _, p := range tc.pods {
				objs = append(objs, p)
			}
			c := newFakeClient(objs...)
			r := &RoleLabel{Client: c, Deployments: c, Namespaces: c, Now: func() time.Time { return now }}
			res, err := r.Reconcile(context.Background(), ctrl.Request{NamespacedName: client.ObjectKey{Namespace: "apps", Name: "a"}})
			if err != nil {
				t.Fatalf("reconcile: %v", err)
			}
			if res.RequeueAfter != tc.wantRequeue {
				t.Errorf("requeue after %s, want %s (when the Lease expires)", res.RequeueAfter, tc.wantRequeue)
			}
			for name, want := range tc.want {
				p := &corev1.Pod{}
				if err := c.Get(context.Background(), client.ObjectKey{Namespace: "apps", Name: name}, p); err != nil {
					t.Fatal(err)
				}
				if got := p.Labels[sidecar.RoleLabel]; got != want {
					t.Errorf("pod %s: role %q, want %q", name, got, want)
				}
			}
		})
	}
}

func TestRoleLabelLongDeploymentName(t *testing.T) {
	now := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	name := strings.Repeat("payments-reconciler-", 4) // 80 characters: the pods' label holds a hashed value
	value := patches.DeploymentLabelValue(name)
	if value == name {
		t.Fatalf("label value %q is the name; want a shortened one", value)
	}
	holder, secs := name+"-1", int32(15)
	lease := &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "apps", Labels: map[string]string{ManagedByLabel: ManagedBy},
			OwnerReferences: controllerRef(name)},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: &holder, LeaseDurationSeconds: &secs,
			RenewTime: &metav1.MicroTime{Time: now.Add(-time.Second)}},
	}
	pod := func(n string) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: n, Namespace: "apps",
			Labels: map[string]string{patches.LabelDeployment: value}}}
	}
	c := newFakeClient(deploy(name, election, ""), lease, pod(name+"-1"), pod(name+"-2"))
	r := &RoleLabel{Client: c, Deployments: c, Namespaces: c, Now: func() time.Time { return now }}
	if _, err := r.Reconcile(context.Background(), ctrl.Request{NamespacedName: client.ObjectKey{Namespace: "apps", Name: name}}); err != nil {
		t.Fatalf("reconcile: %v", err)
	}
	for n, want := range map[string]string{name + "-1": "leader", name + "-2": "standby"} {
		p := &corev1.Pod{}
		if err := c.Get(context.Background(), client.ObjectKey{Namespace: "apps", Name: n}, p); err != nil {
			t.Fatal(err)
		}
		if got := p.Labels[sidecar.RoleLabel]; got != want {
			t.Errorf("pod %s: role %q, want %q", n, got, want)
		}
	}
}

func TestRoleLabelForeignLeaseLeadsNobody(t *testing.T) {
	now := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	holder, secs := "a-1", int32(15)
	for name, meta := range map[string]metav1.ObjectMeta{
		"someone else's Lease":    {Name: "a", Namespace: "apps"},
		"another singleton's one": {Name: "a", Namespace: "apps", Labels: map[string]string{ManagedByLabel: ManagedBy}, OwnerReferences: controllerRef("b")},
	} {
		t.Run(name, func(t *testing.T) {
			lease := &coordinationv1.Lease{ObjectMeta: meta, Spec: coordinationv1.LeaseSpec{HolderIdentity: &holder,
				LeaseDurationSeconds: &secs, RenewTime: &metav1.MicroTime{Time: now}}}
			p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "a-1", Namespace: "apps", Labels: map[string]string{patches.LabelDeployment: "a"}}}
			c := newFakeClient(deploy("a", election, ""), lease, p)
			r := &RoleLabel{Client: c, Deployments: c, Namespaces: c, Now: func() time.Time { return now }}
			if _, err := r.Reconcile(context.Background(), ctrl.Request{NamespacedName: client.ObjectKey{Namespace: "apps", Name: "a"}}); err != nil {
				t.Fatalf("reconcile: %v", err)
			}
			if err := c.Get(context.Background(), client.ObjectKeyFromObject(p), p); err != nil {
				t.Fatal(err)
			}
			if got := p.Labels[sidecar.RoleLabel]; got != sidecar.RoleStandby {
				t.Errorf("the holder named by a Lease not ours: role %q, want standby", got)
			}
		})
	}
}

func TestRoleLabelOptimisticLock(t *testing.T) {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "a-1", Namespace: "apps", Labels: map[string]string{patches.LabelDeployment: "a"}}}
	c := newFakeClient(p)
	seen := &corev1.Pod{}
	if err := c.Get(context.Background(), client.ObjectKeyFromObject(p), seen); err != nil {
		t.Fatal(err)
	}
	// Someone labels the Pod after the controller read it.
	changed := seen.DeepCopy()
	changed.Labels[sidecar.RoleLabel] = sidecar.RoleLeader
	if err := c.Update(context.Background(), changed); err != nil {
		t.Fatal(err)
	}
	r := &RoleLabel{Client: c}
	if err := r.label(context.Background(), seen, sidecar.RoleStandby); !errors.Is(err, errStale) {
		t.Errorf("label from a stale read: %v, want errStale", err)
	}
	now := &corev1.Pod{}
	if err := c.Get(context.Background(), client.ObjectKeyFromObject(p), now); err != nil {
		t.Fatal(err)
	}
	if now.Labels[sidecar.RoleLabel] != sidecar.RoleLeader {
		t.Errorf("role %q after a patch from a stale read, want the newer leader kept", now.Labels[sidecar.RoleLabel])
	}
	if err := r.label(context.Background(), now, sidecar.RoleStandby); err != nil {
		t.Errorf("label from a fresh read: %v", err)
	}
}

func TestPodDeploymentsMapsAPodToItsDeployment(t *testing.T) {
	long := strings.Repeat("payments-reconciler-", 4) // 80 characters: its pods' value is shortened
	other := strings.Repeat("payments-reconciler-", 5)
	c := newFakeClient(deploy("api", election, ""), deploy(long, election, ""), deploy(other, election, ""))
	mapPod := podDeployments(c)
	pod := func(value string) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "apps",
			Labels: map[string]string{patches.LabelDeployment: value}}}
	}
	names := func(reqs []reconcile.Request) []string {
		var out []string
		for _, r := range reqs {
			if r.Namespace != "apps" {
				t.Errorf("request %s: want namespace apps", r)
			}
			out = append(out, r.Name)
		}
		return out
	}
	short := patches.DeploymentLabelValue(long)
	tests := map[string]struct {
		pod  *corev1.Pod
		want []string
	}{
		"a name that fits is the value":           {pod("api"), []string{"api"}},
		"a shortened value finds its long name":   {pod(short), []string{short, long}},
		"a Pod without the label maps to nothing": {&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "apps"}}, nil},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := names(mapPod(context.Background(), tc.pod)); !slices.Equal(got, tc.want) {
				t.Errorf("requests for %v, want %v", got, tc.want)
			}
		})
	}
}
