package elector

import (
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestEpochGrowsWithTransitionsAndRecreation(t *testing.T) {
	lease := func(created time.Time, transitions int32) *coordinationv1.Lease {
		return &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{CreationTimestamp: metav1.NewTime(created)},
			Spec:       coordinationv1.LeaseSpec{LeaseTransitions: &transitions},
		}
	}
	t0 := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	old := Epoch(lease(t0, 500))
	if next := Epoch(lease(t0, 501)); next != old+1 {
		t.Errorf("one more transition: epoch %d, want %d", next, old+1)
	}
	if recreated := Epoch(lease(t0.Add(time.Second), 0)); recreated <= old {
		t.Errorf("a Lease recreated a second later starts at %d, want above %d", recreated, old)
	}
	if far := Epoch(lease(time.Date(2199, 12, 31, 0, 0, 0, 0, time.UTC), 1<<19)); far >= 1<<53 {
		t.Errorf("epoch %d of a Lease of 2199 is not exact as a JSON double", far)
	}
	if none := Epoch(&coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{CreationTimestamp: metav1.NewTime(t0)}}); none != t0.Unix()<<20 {
		t.Errorf("a Lease without transitions: epoch %d, want %d", none, t0.Unix()<<20)
	}
}
