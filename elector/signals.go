package elector

import (
	"context"
	"sync"
	"time"

	"github.com/go-logr/logr"
)

// signals are the three ways the application learns its role: the leader
// file, GET /leader, and the Pod's RoleLabel. Transitions are serialized
// and order the signals so that the file, the one applications rely on
// most, is the first to go down:
//
//   - lead: HTTP state, then the file, then the label (in the background);
//   - standby: the file, then HTTP state, then the label.
type signals struct {
	self    string
	status  *status
	file    stateFile
	label   *labeler
	metrics *metrics
	log     logr.Logger

	mu      sync.Mutex
	leading bool
}

// lead raises the leader signals; renewed is when the first write of the
// acquiring record was sent, deadline when the signals must be down unless
// renewed, epoch the term's fencing token.
func (s *signals) lead(renewed, deadline time.Time, epoch int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.leading {
		return
	}
	s.leading = true
	s.status.lead(epoch, deadline, time.Now())
	s.writeFile(renewed)
	s.metrics.setLeader(true)
	s.label.set(RoleLeader)
	s.log.Info("Became leader", "identity", s.self, "epoch", epoch)
}

// writeFile writes the leader file from the HTTP state, unless that says
// standby already (the deadline passed).
func (s *signals) writeFile(renewed time.Time) {
	st := s.status.get()
	if !st.IsLeader {
		return
	}
	if err := s.file.write(st, renewed); err != nil {
		s.log.Error(err, "Cannot write the leader file; the application sees leadership over HTTP only")
	}
}

// standby drops the leader signals, except that the label is only queued:
// callers that are about to let a successor in wait for it with syncLabel.
func (s *signals) standby(reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.leading {
		return
	}
	if err := s.file.remove(); err != nil {
		s.log.Error(err, "Cannot remove the leader file")
	}
	s.leading = false
	s.status.follow("", time.Now())
	s.metrics.setLeader(false)
	s.label.set(RoleStandby)
	s.log.Info("Stopped leading", "identity", s.self, "reason", reason)
}

// renewed moves the HTTP deadline after a renewal whose record was first
// sent at at, and rewrites the leader file when its validUntil moves.
func (s *signals) renewed(at, deadline time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.leading {
		return
	}
	before := s.status.get().ValidUntil
	s.status.extend(deadline)
	if after := s.status.get().ValidUntil; before == nil || after == nil || !after.Equal(*before) {
		s.writeFile(at)
	}
}

// observe records the Lease holder seen by a standby. While this candidate
// leads, or when the report names itself, it is ignored: those reports
// arrive asynchronously and may be stale; lead and standby own that state.
func (s *signals) observe(holder string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.leading || holder == s.self {
		return
	}
	s.status.follow(holder, time.Now())
}

// syncLabel applies the wanted label now, bounded by timeout, even while
// shutdown (ctx done) is in progress.
func (s *signals) syncLabel(timeout time.Duration) {
	if err := s.label.sync(context.Background(), timeout); err != nil {
		s.log.Error(err, "Cannot set the role label now; will retry")
	}
}

// reset clears what a previous run may have left: the leader file (the
// volume outlives a crashed container) and the label.
func (s *signals) reset() error {
	s.label.set(RoleStandby)
	return s.file.remove()
}
