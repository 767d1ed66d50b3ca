package elector

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/go-logr/logr"
	rl "k8s.io/client-go/tools/leaderelection/resourcelock"
)

// trackingLock wraps the Lease lock of one term. It is where the safety
// rules are enforced, because every write of the Lease passes through it:
//
//   - a successful write naming this candidate moves the term's deadline
//     (renewed), timed from before the first request that wrote the same
//     record: a standby compares records as JSON, where times have whole
//     seconds, so it cannot tell that write from later ones of the same
//     second, and may have seen it first (the package documentation has
//     the argument);
//   - a write naming anyone else is a release: the term ends first, so the
//     signals are down before a successor can take the Lease;
//   - a release is sent only if the last record read or written names
//     this candidate. client-go's release reads the Lease and writes it back
//     without checking the holder, which after a lost term would clear a
//     successor's Lease; the write carries the resourceVersion of that read,
//     so the check holds at the time of the write.
type trackingLock struct {
	rl.Interface
	term    *term
	metrics *metrics
	log     logr.Logger

	mu    sync.Mutex
	seen  string               // holder of the last record read or written
	first map[string]time.Time // record as JSON → when its first write was sent
}

// anchor returns when the first write of the record ler was sent: now, if
// no write of the same record was sent within the renew deadline. Older
// entries are dropped; a deadline counted from them has passed anyway.
func (l *trackingLock) anchor(ler rl.LeaderElectionRecord, now time.Time) time.Time {
	raw, err := json.Marshal(ler)
	if err != nil {
		return now // cannot happen for this struct; now is no worse than the old rule
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.first == nil {
		l.first = map[string]time.Time{}
	}
	for k, at := range l.first {
		if now.Sub(at) > l.term.renewDeadline {
			delete(l.first, k)
		}
	}
	at, ok := l.first[string(raw)]
	if !ok {
		at = now
		l.first[string(raw)] = at
	}
	return at
}

func (l *trackingLock) setSeen(holder string) {
	l.mu.Lock()
	l.seen = holder
	l.mu.Unlock()
}

func (l *trackingLock) lastSeen() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.seen
}

// epoch is the fencing token of the record last written, when the inner
// lock knows it.
func (l *trackingLock) epoch() int64 {
	if e, ok := l.Interface.(interface{ Epoch() int64 }); ok {
		return e.Epoch()
	}
	return 0
}

// Get reads the Lease and remembers its holder.
func (l *trackingLock) Get(ctx context.Context) (*rl.LeaderElectionRecord, []byte, error) {
	rec, raw, err := l.Interface.Get(ctx)
	if err == nil {
		l.setSeen(rec.HolderIdentity)
	}
	return rec, raw, err
}

// Create creates the Lease; client-go creates it only to acquire it.
func (l *trackingLock) Create(ctx context.Context, ler rl.LeaderElectionRecord) error {
	if ler.HolderIdentity != l.Identity() {
		return fmt.Errorf("create lease for %q: only %q may be written", ler.HolderIdentity, l.Identity())
	}
	first := l.anchor(ler, time.Now())
	if err := l.Interface.Create(ctx, ler); err != nil {
		return err
	}
	l.setSeen(ler.HolderIdentity)
	l.term.renewed(first, l.epoch())
	return nil
}

// Update acquires or renews the Lease, or releases it.
func (l *trackingLock) Update(ctx context.Context, ler rl.LeaderElectionRecord) error {
	if ler.HolderIdentity != l.Identity() {
		return l.release(ctx, ler)
	}
	first := l.anchor(ler, time.Now())
	if err := l.Interface.Update(ctx, ler); err != nil {
		if l.term.isLeading() {
			l.metrics.renewFailures.Inc()
		}
		return err
	}
	l.setSeen(ler.HolderIdentity)
	l.term.renewed(first, l.epoch())
	return nil
}

func (l *trackingLock) release(ctx context.Context, ler rl.LeaderElectionRecord) error {
	l.term.end("releasing the lease")
	if holder := l.lastSeen(); holder != l.Identity() {
		return fmt.Errorf("release lease: held by %q, not by %q", holder, l.Identity())
	}
	if err := l.Interface.Update(ctx, ler); err != nil {
		return fmt.Errorf("release lease: %w", err)
	}
	l.setSeen(ler.HolderIdentity)
	l.metrics.leaseReleases.Inc()
	l.log.Info("Released the lease", "lease", l.Describe())
	return nil
}
