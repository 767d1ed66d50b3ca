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

// status holds the Status served over HTTP, safe for concurrent use.
type status struct {
	mu  sync.RWMutex
	cur Status
}

func newStatus(self string, now time.Time) *status {
	return &status{cur: Status{Self: self, Since: now}}
}

// get returns a copy of the current Status.
func (s *status) get() Status {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.cur
}

// set records the leader and whether this candidate leads; Since moves only
// when one of them changes. It reports whether anything changed.
func (s *status) set(leader string, isLeader bool, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur.Leader == leader && s.cur.IsLeader == isLeader {
		return false
	}
	s.cur.Leader, s.cur.IsLeader, s.cur.Since = leader, isLeader, now
	return true
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
