package controllers

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/singleton-webhook/singleton-webhook/patches"
)

// gatePod is a Pod of the group "app" created age ago.
func gatePod(name string, age time.Duration, gated bool, mutate ...func(*corev1.Pod)) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: "ns", UID: types.UID(name),
			Labels:            map[string]string{patches.LabelDeployment: "app"},
			CreationTimestamp: metav1.NewTime(time.Now().Add(-age).Truncate(time.Second)),
		},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "i"}}},
	}
	if gated {
		p.Spec.SchedulingGates = []corev1.PodSchedulingGate{{Name: "example.com/other"}, {Name: patches.GateOneAtATime}}
	} else {
		p.Spec.NodeName = "node-0"
		p.Status.Phase = corev1.PodRunning
	}
	for _, m := range mutate {
		m(p)
	}
	return p
}

func terminating(p *corev1.Pod) {
	ts := metav1.NewTime(time.Now().Add(10 * time.Second))
	p.DeletionTimestamp = &ts
	p.Finalizers = []string{"example.com/keep"} // the fake client refuses a deleted object without one
}

func phase(ph corev1.PodPhase) func(*corev1.Pod) { return func(p *corev1.Pod) { p.Status.Phase = ph } }

func TestGateLiftsOnlyWhenNoOtherPodIsAlive(t *testing.T) {
	tests := map[string]struct {
		pods        []*corev1.Pod
		wantRelease []string // Pods whose gate is gone afterwards
		wantEvent   string   // a substring of the one Event recorded
		wantWaiting float64
	}{
		"the only Pod of the group is released": {
			pods:        []*corev1.Pod{gatePod("new", 0, true)},
			wantRelease: []string{"new"}, wantEvent: "SingletonReleased",
		},
		"a Pod waits while the old one is Terminating": {
			pods:      []*corev1.Pod{gatePod("old", time.Hour, false, terminating), gatePod("new", 0, true)},
			wantEvent: "Waiting for Pod old of the same singleton to be gone: it is Terminating", wantWaiting: 1,
		},
		"a Pod waits while the old one runs": {
			pods:      []*corev1.Pod{gatePod("old", time.Hour, false), gatePod("new", 0, true)},
			wantEvent: "Waiting for Pod old", wantWaiting: 1,
		},
		"a Pod scheduled but not yet running counts as alive": {
			pods:      []*corev1.Pod{gatePod("old", time.Hour, false, phase(corev1.PodPending)), gatePod("new", 0, true)},
			wantEvent: "Waiting for Pod old", wantWaiting: 1,
		},
		"a failed or succeeded Pod does not block": {
			pods: []*corev1.Pod{
				gatePod("evicted", time.Hour, false, phase(corev1.PodFailed)),
				gatePod("done", time.Hour, false, phase(corev1.PodSucceeded)),
				gatePod("new", 0, true),
			},
			wantRelease: []string{"new"}, wantEvent: "SingletonReleased",
		},
		"of two gated Pods only the oldest is released": {
			pods:        []*corev1.Pod{gatePod("b-young", time.Second, true), gatePod("a-old", time.Minute, true)},
			wantRelease: []string{"a-old"}, wantEvent: "SingletonReleased", wantWaiting: 1,
		},
		"a gated Pod being deleted never ran and blocks nobody": {
			pods:        []*corev1.Pod{gatePod("deleted", time.Minute, true, terminating), gatePod("new", 0, true)},
			wantRelease: []string{"new"}, wantEvent: "SingletonReleased",
		},
		"a Pod overstaying its grace period is reported with what an admin can do": {
			pods: []*corev1.Pod{gatePod("stuck", time.Hour, false, terminating, func(p *corev1.Pod) {
				ts := metav1.NewTime(time.Now().Add(-time.Minute))
				p.DeletionTimestamp = &ts
			}), gatePod("new", 0, true)},
			wantEvent: "--grace-period=0 --force", wantWaiting: 1,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			objs := make([]client.Object, len(tc.pods))
			for i, p := range tc.pods {
				objs[i] = p
			}
			c := fake.NewClientBuilder().WithScheme(clientgoscheme.Scheme).WithObjects(objs...).Build()
			rec := events.NewFakeRecorder(10)
			m, err := NewGateMetrics(prometheus.NewRegistry())
			if err != nil {
				t.Fatal(err)
			}
			g := &Gate{Client: c, Reader: c, Recorder: rec, Metrics: m}
			req := reconcile.Request{NamespacedName: types.NamespacedName{Namespace: "ns", Name: "app"}}
			if _, err := g.Reconcile(context.Background(), req); err != nil {
				t.Fatalf("reconcile: %v", err)
			}
			released := map[string]bool{}
			for _, n := range tc.wantRelease {
				released[n] = true
			}
			for _, p := range tc.pods {
				var got corev1.Pod
				if err := c.Get(context.Background(), client.ObjectKeyFromObject(p), &got); err != nil {
					t.Fatal(err)
				}
				if hasGate(p) && hasGate(&got) == released[p.Name] {
					t.Errorf("pod %s: gated %t, want %t", p.Name, hasGate(&got), !released[p.Name])
				}
				if hasGate(p) && len(got.Spec.SchedulingGates) == 0 {
					t.Errorf("pod %s: the other gate was removed too", p.Name)
				}
			}
			select {
			case e := <-rec.Events:
				if !strings.Contains(e, tc.wantEvent) {
					t.Errorf("event %q, want it to contain %q", e, tc.wantEvent)
				}
			default:
				t.Errorf("no event, want one containing %q", tc.wantEvent)
			}
			if got := testutil.ToFloat64(m.waiting); got != tc.wantWaiting {
				t.Errorf("waiting pods metric %v, want %v", got, tc.wantWaiting)
			}
		})
	}
}

func TestGateTellsAWaitOnce(t *testing.T) {
	c := fake.NewClientBuilder().WithScheme(clientgoscheme.Scheme).
		WithObjects(gatePod("old", time.Hour, false), gatePod("new", 0, true)).Build()
	rec := events.NewFakeRecorder(10)
	g := &Gate{Client: c, Reader: c, Recorder: rec}
	req := reconcile.Request{NamespacedName: types.NamespacedName{Namespace: "ns", Name: "app"}}
	for range 3 {
		res, err := g.Reconcile(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		if res.RequeueAfter == 0 {
			t.Errorf("a waiting group is not looked at again")
		}
	}
	if n := len(rec.Events); n != 1 {
		t.Errorf("%d events for one wait, want 1", n)
	}
}

func TestPodGroupIgnoresPodsOfNoSingleton(t *testing.T) {
	if got := podGroup(context.Background(), &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "x", Namespace: "ns"}}); len(got) != 0 {
		t.Errorf("got %v for a Pod without %s", got, patches.LabelDeployment)
	}
	got := podGroup(context.Background(), gatePod("p", 0, true))
	if len(got) != 1 || got[0].Namespace != "ns" || got[0].Name != "app" {
		t.Errorf("got %v, want ns/app", got)
	}
}
