package elector

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-logr/logr"
	rl "k8s.io/client-go/tools/leaderelection/resourcelock"
)

// fakeLock is an in-memory resource lock that records, at each write, what
// the application could see at that moment.
type fakeLock struct {
	holder    string
	onUpdate  func(rl.LeaderElectionRecord)
	updates   []string
	updateErr error
}

func (f *fakeLock) Get(context.Context) (*rl.LeaderElectionRecord, []byte, error) {
	return &rl.LeaderElectionRecord{HolderIdentity: f.holder}, []byte(f.holder), nil
}
func (f *fakeLock) Create(_ context.Context, r rl.LeaderElectionRecord) error {
	f.holder = r.HolderIdentity
	return nil
}
func (f *fakeLock) Update(_ context.Context, r rl.LeaderElectionRecord) error {
	if f.onUpdate != nil {
		f.onUpdate(r)
	}
	if f.updateErr != nil {
		return f.updateErr
	}
	f.updates = append(f.updates, r.HolderIdentity)
	f.holder = r.HolderIdentity
	return nil
}
func (f *fakeLock) RecordEvent(string) {}
func (f *fakeLock) Identity() string   { return "app-0" }
func (f *fakeLock) Describe() string   { return "ns/app" }

type harness struct {
	dir   string
	sig   *signals
	term  *term
	lock  *trackingLock
	inner *fakeLock
}

func newHarness(t *testing.T, renewDeadline time.Duration) *harness {
	t.Helper()
	dir := t.TempDir()
	m := newMetrics()
	sig := &signals{self: "app-0", status: newStatus("app-0", time.Now()), file: newStateFile(dir),
		metrics: m, log: logr.Discard()}
	_, cancel := context.WithCancel(context.Background())
	tm := newTerm(renewDeadline, sig, cancel)
	t.Cleanup(func() { tm.end("test over") })
	inner := &fakeLock{}
	return &harness{dir: dir, sig: sig, term: tm, inner: inner,
		lock: &trackingLock{Interface: inner, term: tm, metrics: m, log: logr.Discard()}}
}

func (h *harness) fileExists() bool {
	_, err := os.Stat(filepath.Join(h.dir, LeaderFileName))
	return err == nil
}

// acquire takes the Lease through the lock and raises the signals.
func (h *harness) acquire(t *testing.T) {
	t.Helper()
	if _, _, err := h.lock.Get(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := h.lock.Update(context.Background(), rl.LeaderElectionRecord{HolderIdentity: "app-0"}); err != nil {
		t.Fatal(err)
	}
	h.term.start(context.Background())
	if !h.fileExists() || !h.sig.status.get().IsLeader {
		t.Fatal("signals not raised after acquiring")
	}
}

func TestReleaseDropsSignalsBeforeTheWrite(t *testing.T) {
	h := newHarness(t, time.Hour)
	h.acquire(t)
	var fileAtRelease, httpAtRelease bool
	h.inner.onUpdate = func(r rl.LeaderElectionRecord) {
		if r.HolderIdentity == "" {
			fileAtRelease, httpAtRelease = h.fileExists(), h.sig.status.get().IsLeader
		}
	}
	if err := h.lock.Update(context.Background(), rl.LeaderElectionRecord{}); err != nil {
		t.Fatalf("release: %v", err)
	}
	if fileAtRelease || httpAtRelease {
		t.Errorf("at the release write: file present %v, HTTP isLeader %v; want both false", fileAtRelease, httpAtRelease)
	}
	if got := h.inner.updates; len(got) != 2 || got[1] != "" {
		t.Errorf("writes %q, want the acquisition then the release", got)
	}
}

func TestReleaseOfALeaseHeldByAnotherIsRefused(t *testing.T) {
	h := newHarness(t, time.Hour)
	h.acquire(t)
	h.inner.holder = "app-1" // a successor took over; the next read sees it
	if _, _, err := h.lock.Get(context.Background()); err != nil {
		t.Fatal(err)
	}
	err := h.lock.Update(context.Background(), rl.LeaderElectionRecord{})
	if err == nil || err.Error() != `release lease: held by "app-1", not by "app-0"` {
		t.Errorf("release = %v, want a refusal naming the holder", err)
	}
	if h.inner.holder != "app-1" {
		t.Errorf("holder %q after the refused release, want app-1 untouched", h.inner.holder)
	}
}

func TestLeadingStartsOnlyBeforeTheDeadline(t *testing.T) {
	h := newHarness(t, time.Second)
	// The acquisition was sent longer ago than the renew deadline, as when
	// OnStartedLeading runs late.
	h.term.renewed(time.Now().Add(-2*time.Second), 1)
	h.term.start(context.Background())
	if h.fileExists() || h.sig.status.get().IsLeader {
		t.Error("signals raised although the renew deadline had passed")
	}
}

func TestFailedRenewalDoesNotMoveTheDeadline(t *testing.T) {
	h := newHarness(t, time.Hour)
	h.acquire(t)
	before := h.term.deadline
	h.inner.updateErr = errors.New("connection refused")
	if err := h.lock.Update(context.Background(), rl.LeaderElectionRecord{HolderIdentity: "app-0"}); err == nil {
		t.Fatal("renewal succeeded, want the injected error")
	}
	if h.term.deadline != before {
		t.Errorf("deadline moved from %v to %v on a failed renewal", before, h.term.deadline)
	}
}

func TestStaleLeaderReportsDoNotOverrideState(t *testing.T) {
	h := newHarness(t, time.Hour)
	h.sig.observe("app-0") // late report naming self while not leading
	if st := h.sig.status.get(); st.Leader != "" || st.IsLeader {
		t.Errorf("status %+v after a report naming self, want unchanged", st)
	}
	h.acquire(t)
	h.sig.observe("app-1") // stale report from before the acquisition
	if st := h.sig.status.get(); st.Leader != "app-0" || !st.IsLeader {
		t.Errorf("status %+v after a stale report while leading, want app-0 leading", st)
	}
}
