package elector

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	rl "k8s.io/client-go/tools/leaderelection/resourcelock"
)

// record is what client-go writes when the leader renews at `at`.
func record(at time.Time) rl.LeaderElectionRecord {
	return rl.LeaderElectionRecord{HolderIdentity: "app-0", LeaseDurationSeconds: 2,
		AcquireTime: metav1.NewTime(at.Truncate(time.Hour)), RenewTime: metav1.NewTime(at)}
}

// TestDeadlineCountsFromTheFirstWriteOfARecord checks the fix of a split
// brain: a standby cannot tell renewals within one second apart (the
// record's times are whole seconds), so the leader's deadline counts from
// the first write of the record, not from the last renewal.
func TestDeadlineCountsFromTheFirstWriteOfARecord(t *testing.T) {
	const renew = time.Hour
	h := newHarness(t, renew)
	h.acquire(t)
	sec := time.Now().Truncate(time.Second)
	if err := h.lock.Update(context.Background(), record(sec.Add(100*time.Millisecond))); err != nil {
		t.Fatal(err)
	}
	first := h.term.deadline
	time.Sleep(20 * time.Millisecond)
	// Same second of the record: the standby sees no change.
	if err := h.lock.Update(context.Background(), record(sec.Add(900*time.Millisecond))); err != nil {
		t.Fatal(err)
	}
	if got := h.term.deadline; !got.Equal(first) {
		t.Errorf("a renewal of the same record moved the deadline by %s, want it kept", got.Sub(first))
	}
	// The next second is a new record: the deadline moves.
	if err := h.lock.Update(context.Background(), record(sec.Add(time.Second))); err != nil {
		t.Fatal(err)
	}
	if got := h.term.deadline; !got.After(first) {
		t.Errorf("a renewal of a new record moved the deadline by %s, want it later", got.Sub(first))
	}
}

// TestAFailedWriteAnchorsTheRecordToo: a write whose answer is lost may
// still have landed, and a standby may have seen it first.
func TestAFailedWriteAnchorsTheRecordToo(t *testing.T) {
	const renew = time.Hour
	h := newHarness(t, renew)
	h.acquire(t)
	rec := record(time.Now())
	h.inner.updateErr = errors.New("timeout awaiting response")
	if err := h.lock.Update(context.Background(), rec); err == nil {
		t.Fatal("write succeeded, want the injected error")
	}
	raw, _ := json.Marshal(rec)
	first, ok := h.lock.first[string(raw)]
	if !ok {
		t.Fatal("the failed write was not remembered")
	}
	time.Sleep(20 * time.Millisecond)
	h.inner.updateErr = nil
	if err := h.lock.Update(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	if got := h.term.deadline.Sub(first); got != renew {
		t.Errorf("deadline %s after the failed first write, want the renew deadline %s from it", got, renew)
	}
}

// TestARenewalAfterTheDeadlineEndsTheTerm: leadership is one unbroken
// interval, so a renewal that comes back late does not raise it again.
func TestARenewalAfterTheDeadlineEndsTheTerm(t *testing.T) {
	h := newHarness(t, time.Hour)
	h.acquire(t)
	h.term.mu.Lock()
	h.term.deadline = time.Now().Add(-time.Millisecond) // as if the timer had not run yet
	h.term.mu.Unlock()
	if err := h.lock.Update(context.Background(), record(time.Now())); err != nil {
		t.Fatal(err)
	}
	if h.term.isLeading() || h.fileExists() || h.sig.status.get().IsLeader {
		t.Error("a renewal after the deadline kept the term leading")
	}
}
