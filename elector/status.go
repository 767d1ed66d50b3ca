package elector

import (
	"encoding/json"
	"net/http"
	"sync"
	"time"
)

// Status is the JSON body of GET /leader, and the content of the leader
// file.
type Status struct {
	// Leader is the holder of the Lease as last observed; empty when unknown,
	// e.g. right after this candidate lost the Lease.
	Leader string `json:"leader"`
	// Self is this candidate's identity.
	Self string `json:"self"`
	// IsLeader tells whether this candidate leads. It is the only field an
	// application should act upon, and only until ValidUntil.
	IsLeader bool `json:"isLeader"`
	// Since is when Leader or IsLeader last changed (RFC 3339).
	Since time.Time `json:"since"`
	// Epoch is the fencing token of the leader's term, set while leading
	// (0 otherwise): it grows with every change of leader of the Lease,
	// also across a deleted and recreated Lease. Pass it with every write
	// to a store that remembers the highest epoch it has seen and refuses
	// lower ones: a leader that lost the Lease without knowing it (a long
	// pause) is then refused.
	Epoch int64 `json:"epoch"`
	// ValidUntil is the leader's own deadline (RFC 3339), set while
	// leading: past it, this candidate is no leader, whatever else it
	// says, unless a renewal moved it. The leader file is valid only before
	// it.
	ValidUntil *time.Time `json:"validUntil,omitempty"`
}

// status holds the Status served over HTTP, safe for concurrent use. While
// leading it also holds the deadline, and answers standby once it has
// passed even if the process was too starved of CPU to run its deadline
// timer yet.
type status struct {
	mu       sync.RWMutex
	cur      Status
	deadline time.Time // while leading: the term's deadline (monotonic)
}

func newStatus(self string, now time.Time) *status {
	return &status{cur: Status{Self: self, Since: now}}
}

// get returns a copy of the current Status.
func (s *status) get() Status {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if !s.cur.IsLeader {
		return s.cur
	}
	if !time.Now().Before(s.deadline) {
		return Status{Self: s.cur.Self, Since: s.deadline.Round(0)}
	}
	st := s.cur
	until := s.deadline.Round(0) // the wall-clock reading only
	st.ValidUntil = &until
	return st
}

// lead records that this candidate leads in the term of epoch until
// deadline.
func (s *status) lead(epoch int64, deadline, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deadline = deadline
	s.cur.Epoch = epoch
	if s.cur.Leader == s.cur.Self && s.cur.IsLeader {
		return
	}
	s.cur.Leader, s.cur.IsLeader, s.cur.Since = s.cur.Self, true, now
}

// follow records that leader (maybe "": unknown) leads, not this candidate;
// Since moves only when that changes.
func (s *status) follow(leader string, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deadline, s.cur.Epoch = time.Time{}, 0
	if s.cur.Leader == leader && !s.cur.IsLeader {
		return
	}
	s.cur.Leader, s.cur.IsLeader, s.cur.Since = leader, false, now
}

// extend moves the deadline after a renewal.
func (s *status) extend(deadline time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deadline = deadline
}

// ServeHTTP answers GET /leader with the Status as JSON.
func (s *status) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	body, err := json.Marshal(s.get())
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(append(body, '\n'))
}

// healthz answers GET /healthz: the process serves.
func healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ok\n"))
}
