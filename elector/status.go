package elector

import (
	"encoding/json"
	"net/http"
	"sync"
	"time"
)

// Status is the JSON body of GET /leader.
type Status struct {
	// Leader is the holder of the Lease as last observed; empty when unknown,
	// e.g. right after this candidate lost the Lease.
	Leader string `json:"leader"`
	// Self is this candidate's identity.
	Self string `json:"self"`
	// IsLeader tells whether this candidate leads. It is the only field an
	// application should act upon.
	IsLeader bool `json:"isLeader"`
	// Since is when Leader or IsLeader last changed (RFC 3339).
	Since time.Time `json:"since"`
}

// status holds the Status served over HTTP, safe for concurrent use. While
// leading it also holds the renew deadline, and answers standby once it
// has passed even if the process was too starved of CPU to run its
// deadline timer yet.
type status struct {
	mu       sync.RWMutex
	cur      Status
	deadline time.Time // while leading: last renewal + renew deadline
}

func newStatus(self string, now time.Time) *status {
	return &status{cur: Status{Self: self, Since: now}}
}

// get returns a copy of the current Status.
func (s *status) get() Status {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.cur.IsLeader && !time.Now().Before(s.deadline) {
		return Status{Self: s.cur.Self, Since: s.deadline}
	}
	return s.cur
}

// set records the leader and whether this candidate leads, and the renew
// deadline while it does; Since moves only when leader or isLeader change.
func (s *status) set(leader string, isLeader bool, deadline, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deadline = deadline
	if s.cur.Leader == leader && s.cur.IsLeader == isLeader {
		return
	}
	s.cur.Leader, s.cur.IsLeader, s.cur.Since = leader, isLeader, now
}

// extend moves the renew deadline after a renewal.
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
