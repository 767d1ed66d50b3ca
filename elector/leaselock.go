package elector

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	coordinationv1client "k8s.io/client-go/kubernetes/typed/coordination/v1"
	rl "k8s.io/client-go/tools/leaderelection/resourcelock"
)

// epochShift leaves room for 2^20 (about a million) changes of leader per
// second of the Lease's creation time in Epoch, and keeps epochs of Leases
// created until the year 2200 below 2^53, so JSON readers that hold numbers
// as doubles read them exactly.
const epochShift = 20

// Epoch is the fencing token of a Lease record: the Lease's creation time
// (seconds) shifted left by 20 bits, plus its leaseTransitions. It grows
// with every change of holder, and a Lease deleted and created again later
// starts above any epoch of the old one (unless the old one saw a million
// changes of leader per second it existed).
func Epoch(lease *coordinationv1.Lease) int64 {
	var transitions int64
	if lease.Spec.LeaseTransitions != nil {
		transitions = int64(*lease.Spec.LeaseTransitions)
	}
	return lease.CreationTimestamp.Unix()<<epochShift + transitions
}

// leaseLock is client-go's LeaseLock, plus the epoch of the Lease it last
// read or wrote (client-go's keeps the Lease to itself).
type leaseLock struct {
	leases   coordinationv1client.LeaseInterface
	name     string
	ns       string
	identity string

	mu    sync.Mutex
	lease *coordinationv1.Lease
}

var _ rl.Interface = (*leaseLock)(nil)

// Get reads the Lease; the raw record is what client-go compares to notice
// a change, as with its own LeaseLock.
func (l *leaseLock) Get(ctx context.Context) (*rl.LeaderElectionRecord, []byte, error) {
	lease, err := l.leases.Get(ctx, l.name, metav1.GetOptions{})
	if err != nil {
		return nil, nil, err
	}
	l.set(lease)
	record := rl.LeaseSpecToLeaderElectionRecord(&lease.Spec)
	raw, err := json.Marshal(*record)
	if err != nil {
		return nil, nil, err
	}
	return record, raw, nil
}

// Create creates the Lease holding ler.
func (l *leaseLock) Create(ctx context.Context, ler rl.LeaderElectionRecord) error {
	lease, err := l.leases.Create(ctx, &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: l.name, Namespace: l.ns},
		Spec:       rl.LeaderElectionRecordToLeaseSpec(&ler),
	}, metav1.CreateOptions{})
	if err != nil {
		return err
	}
	l.set(lease)
	return nil
}

// Update writes ler over the Lease last read or written, conditioned on
// its resourceVersion.
func (l *leaseLock) Update(ctx context.Context, ler rl.LeaderElectionRecord) error {
	l.mu.Lock()
	if l.lease == nil {
		l.mu.Unlock()
		return errors.New("lease not initialized, call get or create first")
	}
	next := l.lease.DeepCopy()
	l.mu.Unlock()
	next.Spec = rl.LeaderElectionRecordToLeaseSpec(&ler)
	lease, err := l.leases.Update(ctx, next, metav1.UpdateOptions{})
	if err != nil {
		return err
	}
	l.set(lease)
	return nil
}

func (l *leaseLock) set(lease *coordinationv1.Lease) {
	l.mu.Lock()
	l.lease = lease
	l.mu.Unlock()
}

// Epoch is the epoch of the Lease last read or written; 0 before any.
func (l *leaseLock) Epoch() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lease == nil {
		return 0
	}
	return Epoch(l.lease)
}

// RecordEvent records nothing: the sidecar logs its transitions instead.
func (l *leaseLock) RecordEvent(string) {}

// Describe names the Lease in logs.
func (l *leaseLock) Describe() string { return fmt.Sprintf("%s/%s", l.ns, l.name) }

// Identity is this candidate's identity.
func (l *leaseLock) Identity() string { return l.identity }
