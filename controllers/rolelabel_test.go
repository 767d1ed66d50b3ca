package controllers

import (
	"context"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

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
