package elector

import (
	"sync"
	"time"

	"github.com/go-logr/logr"
)

// signals are the two ways the application learns its role: the leader
// file and GET /leader. Transitions are serialized and order the signals
// so that the file, the one applications rely on most, is the first to go
// down:
//
//   - lead: HTTP state, then the file;
//   - standby: the file, then HTTP state.
//
// The Pod's RoleLabel is no signal of the sidecar's: the webhook's
// controller sets it from the Lease.
type signals struct {
	self    string
	status  *status
	file    stateFile
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

// standby drops the leader signals.
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

// reset clears what a previous run may have left: the leader file (the
// volume outlives a crashed container).
func (s *signals) reset() error {
	return s.file.remove()
}
