package elector

import (
	"context"
	"sync"
	"time"
)

// term is one run of the client-go elector: acquire, then renew until the
// Lease is lost or released. It owns the local deadline that bounds the
// leader signals; see the package documentation for why it is needed.
type term struct {
	renewDeadline time.Duration
	sig           *signals
	cancel        context.CancelFunc // stops the client-go elector of this term

	mu       sync.Mutex
	deadline time.Time // first write of the last renewed record + renewDeadline; zero before acquiring
	timer    *time.Timer
	epoch    int64 // fencing token of the record last written
	leading  bool  // the signals were raised in this term
	ended    bool

	endOnce sync.Once
}

func newTerm(renewDeadline time.Duration, sig *signals, cancel context.CancelFunc) *term {
	return &term{renewDeadline: renewDeadline, sig: sig, cancel: cancel}
}

// renewed records a successful write of the Lease with this candidate as
// holder, of epoch; first is when the first write of the same record was sent, which
// is no later than the moment any standby can have seen that record. A
// renewal that comes back after the deadline passed ends the term instead:
// the signals may already have answered standby, and a term's leadership
// is one unbroken interval.
func (t *term) renewed(first time.Time, epoch int64) {
	t.mu.Lock()
	if t.ended {
		t.mu.Unlock()
		return
	}
	if !t.deadline.IsZero() && !time.Now().Before(t.deadline) {
		t.mu.Unlock()
		t.end("renew deadline passed before a renewal came back")
		return
	}
	defer t.mu.Unlock()
	t.deadline, t.epoch = first.Add(t.renewDeadline), epoch
	wait := time.Until(t.deadline)
	if t.timer == nil {
		t.timer = time.AfterFunc(wait, t.expire)
	} else {
		t.timer.Reset(wait)
	}
	if t.leading {
		t.sig.renewed(first, t.deadline)
	}
}

// start raises the leader signals, unless the term ended or its deadline
// passed before client-go got round to calling OnStartedLeading.
func (t *term) start(ctx context.Context) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.ended || ctx.Err() != nil || t.deadline.IsZero() || !time.Now().Before(t.deadline) {
		return
	}
	t.leading = true
	t.sig.lead(t.deadline.Add(-t.renewDeadline), t.deadline, t.epoch)
}

// isLeading reports whether this term raised the leader signals.
func (t *term) isLeading() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.leading && !t.ended
}

// expire fires at the deadline. A timer reset concurrently may fire early:
// then it is armed again for the time left.
func (t *term) expire() {
	t.mu.Lock()
	if t.ended {
		t.mu.Unlock()
		return
	}
	if left := time.Until(t.deadline); left > 0 {
		t.timer.Reset(left)
		t.mu.Unlock()
		return
	}
	t.mu.Unlock()
	t.end("renew deadline passed since the last successful renewal")
}

// wake ends a term that has not acquired the Lease, so that the next term
// tries to acquire at once. It reports whether it did.
func (t *term) wake() bool {
	t.mu.Lock()
	if t.ended || !t.deadline.IsZero() {
		t.mu.Unlock()
		return false
	}
	t.ended = true
	t.mu.Unlock()
	t.end("lease released by its holder")
	return true
}

// end stops the client-go elector and drops the signals. Concurrent
// callers return only once the first call completed, so a release that
// calls end is sent only after the signals are down.
func (t *term) end(reason string) {
	t.endOnce.Do(func() {
		t.mu.Lock()
		t.ended = true
		wasLeading := t.leading
		if t.timer != nil {
			t.timer.Stop()
		}
		t.mu.Unlock()
		// Stop renewing first: a Lease held without signals helps nobody.
		// client-go's release then waits in this Do for the signals to drop.
		t.cancel()
		if wasLeading {
			t.sig.standby(reason)
		}
	})
}

// observe forwards a holder seen by client-go while the term runs.
func (t *term) observe(holder string) {
	t.mu.Lock()
	ended := t.ended
	t.mu.Unlock()
	if !ended {
		t.sig.observe(holder)
	}
}
