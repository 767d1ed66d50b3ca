package elector

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	rl "k8s.io/client-go/tools/leaderelection/resourcelock"
)

// withLabel gives the harness a labeler on a fake clientset holding the
// Pod; patchErr, when set, makes every patch fail with it.
func (h *harness) withLabel(t *testing.T, patchErr error) *fake.Clientset {
	t.Helper()
	cs := fake.NewClientset(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "app-0", Namespace: "ns"}})
	if patchErr != nil {
		cs.PrependReactor("patch", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
			return true, nil, patchErr
		})
	}
	h.sig.label = newLabeler(cs.CoreV1().Pods("ns"), "app-0", time.Second, logr.Discard(), h.sig.metrics)
	return cs
}

func roleOf(t *testing.T, cs *fake.Clientset) string {
	t.Helper()
	pod, err := cs.CoreV1().Pods("ns").Get(context.Background(), "app-0", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return pod.Labels[RoleLabel]
}

func TestReleaseWaitsForTheLabelToSayStandby(t *testing.T) {
	h := newHarness(t, time.Hour)
	cs := h.withLabel(t, nil)
	h.acquire(t)
	if err := h.sig.label.sync(context.Background(), time.Second); err != nil {
		t.Fatal(err)
	}
	if got := roleOf(t, cs); got != RoleLeader {
		t.Fatalf("label %q while leading, want %q", got, RoleLeader)
	}
	var roleAtRelease string
	h.inner.onUpdate = func(r rl.LeaderElectionRecord) {
		if r.HolderIdentity == "" {
			roleAtRelease = roleOf(t, cs)
		}
	}
	if err := h.lock.Update(context.Background(), rl.LeaderElectionRecord{}); err != nil {
		t.Fatalf("release: %v", err)
	}
	if roleAtRelease != RoleStandby {
		t.Errorf("label %q at the release write, want %q", roleAtRelease, RoleStandby)
	}
}

func TestReleaseIsRefusedWhileTheLabelMayStillSayLeader(t *testing.T) {
	h := newHarness(t, time.Hour)
	h.withLabel(t, errors.New("http2: client connection lost")) // the patch may have landed
	h.acquire(t)
	err := h.lock.Update(context.Background(), rl.LeaderElectionRecord{})
	if err == nil || err.Error() != "release lease: the role label may still say leader; the lease expires instead" {
		t.Errorf("release = %v, want a refusal", err)
	}
	if len(h.inner.updates) != 1 {
		t.Errorf("writes %q, want the acquisition only", h.inner.updates)
	}
}

func TestALabelTheAPIServerRefusesDoesNotBlockTheRelease(t *testing.T) {
	h := newHarness(t, time.Hour)
	h.withLabel(t, apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, "app-0", errors.New("no RBAC")))
	h.acquire(t)
	if err := h.lock.Update(context.Background(), rl.LeaderElectionRecord{}); err != nil {
		t.Errorf("release = %v, want it sent: a label that cannot be set is no signal", err)
	}
}

func TestALeaderPatchIsConditionedOnTheResourceVersion(t *testing.T) {
	cs := fake.NewClientset(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "app-0", Namespace: "ns", ResourceVersion: "42"}})
	var bodies []string
	cs.PrependReactor("patch", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		bodies = append(bodies, string(a.(k8stesting.PatchAction).GetPatch()))
		return false, nil, nil
	})
	l := newLabeler(cs.CoreV1().Pods("ns"), "app-0", time.Second, logr.Discard(), newMetrics())
	for _, role := range []string{RoleLeader, RoleStandby} {
		l.set(role)
		if err := l.sync(context.Background(), time.Second); err != nil {
			t.Fatalf("set %s: %v", role, err)
		}
	}
	want := []string{
		`{"metadata":{"resourceVersion":"42","labels":{"singleton.dev/role":"leader"}}}`,
		`{"metadata":{"labels":{"singleton.dev/role":"standby"}}}`,
	}
	if !slices.Equal(bodies, want) {
		t.Errorf("patches %q, want %q", bodies, want)
	}
}
