//go:build integration

package elector_test

import (
	"fmt"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"
)

// samplePeriod is how often the sampler reads every signal of every candidate.
const samplePeriod = 20 * time.Millisecond

// group is the candidates of one Lease.
type group struct {
	ns, lease string
	cands     []*candidate
}

// newGroup prepares n candidates (not started) in a namespace of their own,
// each with a Pod object of its name.
func newGroup(t *testing.T, n int, tm timings, extra ...string) *group {
	t.Helper()
	var names []string
	for i := range n {
		names = append(names, fmt.Sprintf("cand-%d", i))
	}
	g := &group{ns: newNamespace(t, names...), lease: "app"}
	for _, name := range names {
		g.cands = append(g.cands, newCandidate(t, g.ns, g.lease, name, tm, extra...))
	}
	return g
}

func (g *group) startAll(t *testing.T) {
	t.Helper()
	for _, c := range g.cands {
		c.start(t)
	}
}

// electFirst starts every candidate and returns the first leader, failing
// the test if none leads within timeout.
func (g *group) electFirst(t *testing.T, timeout time.Duration) *candidate {
	t.Helper()
	g.startAll(t)
	leader, _ := g.waitLeader(t, nil, timeout)
	if leader == nil {
		t.Fatalf("no leader elected within %s", timeout)
	}
	return leader
}

// fileLeader returns the candidate whose leader file exists, other than
// except; nil if none.
func (g *group) fileLeader(except *candidate) *candidate {
	for _, c := range g.cands {
		if c != except && c.hasFile() {
			return c
		}
	}
	return nil
}

// waitLeader waits for a candidate other than except to hold the leader
// file and returns it with the time it was seen.
func (g *group) waitLeader(t *testing.T, except *candidate, timeout time.Duration) (*candidate, time.Time) {
	t.Helper()
	var leader *candidate
	eventually(timeout, func() bool { leader = g.fileLeader(except); return leader != nil })
	return leader, time.Now()
}

// sampler reads the two signals of every candidate every samplePeriod
// and counts the samples that show two candidates leading at once.
//
// A sample is not atomic: on a loaded machine its reads can span tens of
// milliseconds, long enough for a whole handover (the old leader drops,
// the successor rises) to fit between a read of the old leader and a later
// read of the successor. So each sample makes two passes in opposite orders
// (files, then /leader; then /leader, then files)
// and counts an overlap only when it is certain: a candidate seen claiming
// both before and after another candidate's claim. Two claims met in one
// sample without that bracket are handovers caught mid-sample; they are
// counted apart and logged.
type sampler struct {
	g    *group
	stop chan struct{}
	done chan struct{}

	mu        sync.Mutex
	ignore    map[string]string // candidate → "all": signals not sampled
	samples   int
	overlaps  int
	handovers int
	firstSeen []string
	maxSpan   time.Duration
}

// claim is one read that showed a candidate leading, between from and to.
type claim struct {
	name, signal string
	from, to     time.Time
}

func startSampler(g *group) *sampler {
	s := &sampler{g: g, stop: make(chan struct{}), done: make(chan struct{}), ignore: map[string]string{}}
	go s.loop()
	return s
}

// skip stops sampling the signals of a candidate ("all"); "" samples them
// again.
func (s *sampler) skip(c *candidate, what string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ignore[c.name] = what
}

func (s *sampler) loop() {
	defer close(s.done)
	tick := time.NewTicker(samplePeriod)
	defer tick.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-tick.C:
			s.sampleOnce()
		}
	}
}

func (s *sampler) sampleOnce() {
	s.mu.Lock()
	ignore := maps.Clone(s.ignore)
	s.mu.Unlock()
	start := time.Now()
	var claims []claim
	files := func() {
		for _, c := range s.g.cands {
			from := time.Now()
			if ignore[c.name] != "all" && c.hasFile() {
				claims = append(claims, claim{c.name, "file", from, time.Now()})
			}
		}
	}
	http := func() {
		for _, c := range s.g.cands {
			from := time.Now()
			if ignore[c.name] != "all" && c.httpLeader() {
				claims = append(claims, claim{c.name, "http", from, time.Now()})
			}
		}
	}
	files()
	http()
	http()
	files()
	s.record(start, claims)
}

func (s *sampler) record(start time.Time, claims []claim) {
	names := map[string]bool{}
	for _, c := range claims {
		names[c.name] = true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.samples++
	s.maxSpan = max(s.maxSpan, time.Since(start))
	switch {
	case bracketed(claims):
		s.overlaps++
		if len(s.firstSeen) < 5 {
			s.firstSeen = append(s.firstSeen, describe(start, claims))
		}
	case len(names) > 1:
		s.handovers++
	}
}

// bracketed reports whether some candidate claims both before and after
// another candidate's claim: then both led at the moment of the latter.
func bracketed(claims []claim) bool {
	for _, y := range claims {
		for _, x := range claims {
			if x.name == y.name || !x.to.Before(y.from) {
				continue
			}
			for _, z := range claims {
				if z.name == x.name && y.to.Before(z.from) {
					return true
				}
			}
		}
	}
	return false
}

// finish stops sampling and reports the sample and overlap counts.
func (s *sampler) finish(t *testing.T) (samples, overlaps int) {
	t.Helper()
	close(s.stop)
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	t.Logf("sampler: %d samples (longest %s), %d handovers caught mid-sample, %d overlaps",
		s.samples, s.maxSpan.Round(time.Millisecond), s.handovers, s.overlaps)
	if s.overlaps > 0 {
		t.Logf("first overlapping samples: %s", strings.Join(s.firstSeen, "; "))
	}
	return s.samples, s.overlaps
}

func describe(start time.Time, claims []claim) string {
	var parts []string
	for _, c := range claims {
		parts = append(parts, fmt.Sprintf("%s=%s@+%dµs", c.name, c.signal, c.from.Sub(start).Microseconds()))
	}
	return start.UTC().Format("15:04:05.000000") + " " + strings.Join(parts, " ")
}

func TestSamplerCountsOnlyCertainOverlaps(t *testing.T) {
	at := func(ms int) time.Time { return time.Unix(0, 0).Add(time.Duration(ms) * time.Millisecond) }
	read := func(name string, ms int) claim { return claim{name, "file", at(ms), at(ms + 1)} }
	tests := map[string]struct {
		claims []claim
		want   bool
	}{
		"one leader is no overlap":                    {[]claim{read("a", 0), read("a", 10)}, false},
		"a handover inside the sample is no overlap":  {[]claim{read("a", 0), read("b", 10), read("b", 20)}, false},
		"a claim on both sides of another is overlap": {[]claim{read("a", 0), read("b", 10), read("a", 20)}, true},
		"reads at the same moment prove nothing":      {[]claim{read("a", 0), read("b", 0), read("a", 0)}, false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := bracketed(tc.claims); got != tc.want {
				t.Errorf("bracketed = %v, want %v", got, tc.want)
			}
		})
	}
}
