package elector

import (
	"context"
	"errors"
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
//     (renewed), timed from before the request was sent;
//   - a write naming anyone else is a release: the term ends first, so the
//     signals are down before a successor can take the Lease;
//   - a release is sent only once the role label is known to say standby
//     (else the Lease expires: a successor must not lead while the label
//     still routes to this Pod), and only if the last record read or
//     written names this candidate. client-go's release reads the Lease and writes it back
//     without checking the holder, which after a lost term would clear a
//     successor's Lease; the write carries the resourceVersion of that read,
//     so the check holds at the time of the write.
type trackingLock struct {
	rl.Interface
	term    *term
	metrics *metrics
	log     logr.Logger

	mu   sync.Mutex
	seen string // holder of the last record read or written
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
	sent := time.Now()
	if err := l.Interface.Create(ctx, ler); err != nil {
		return err
	}
	l.setSeen(ler.HolderIdentity)
	l.term.renewed(sent)
	return nil
}

// Update acquires or renews the Lease, or releases it.
func (l *trackingLock) Update(ctx context.Context, ler rl.LeaderElectionRecord) error {
	if ler.HolderIdentity != l.Identity() {
		return l.release(ctx, ler)
	}
	sent := time.Now()
	if err := l.Interface.Update(ctx, ler); err != nil {
		if l.term.isLeading() {
			l.metrics.renewFailures.Inc()
		}
		return err
	}
	l.setSeen(ler.HolderIdentity)
	l.term.renewed(sent)
	return nil
}

func (l *trackingLock) release(ctx context.Context, ler rl.LeaderElectionRecord) error {
	l.term.end("releasing the lease")
	if holder := l.lastSeen(); holder != l.Identity() {
		return fmt.Errorf("release lease: held by %q, not by %q", holder, l.Identity())
	}
	if l.term.sig.label.mayClaimLeader() {
		return errors.New("release lease: the role label may still say leader; the lease expires instead")
	}
	if err := l.Interface.Update(ctx, ler); err != nil {
		return fmt.Errorf("release lease: %w", err)
	}
	l.setSeen(ler.HolderIdentity)
	l.metrics.leaseReleases.Inc()
	l.log.Info("Released the lease", "lease", l.Describe())
	return nil
}
