//go:build integration

package elector_test

import (
	"context"
	"fmt"
	"maps"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/singleton-webhook/singleton-webhook/elector"
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

// roleLabels reads the role label of every Pod in one consistent List.
func (g *group) roleLabels() (map[string]string, error) {
	pods, err := cluster.client.CoreV1().Pods(g.ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, p := range pods.Items {
		out[p.Name] = p.Labels[elector.RoleLabel]
	}
	return out, nil
}

// sampler reads the three signals of every candidate every samplePeriod
// and counts the samples in which more than one candidate claims to lead.
type sampler struct {
	g    *group
	stop chan struct{}
	done chan struct{}

	mu        sync.Mutex
	ignore    map[string]string // candidate → "all" or "label": signals not sampled
	samples   int
	overlaps  int
	firstSeen []string
}

func startSampler(g *group) *sampler {
	s := &sampler{g: g, stop: make(chan struct{}), done: make(chan struct{}), ignore: map[string]string{}}
	go s.loop()
	return s
}

// skip stops sampling some signals of a candidate ("all" or "label");
// "" samples all of them again.
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

// sampleOnce reads all files, then all /leader answers, then all labels in
// one List. A sample is not atomic, so it could report a false overlap only
// if a whole handover fit between its reads; a handover takes at least four
// API round trips after the old leader's file and HTTP state drop (its
// label patch, its release, the successor's read and write of the Lease),
// more than the sub-millisecond file and HTTP reads, and the List is one
// consistent snapshot taken last, after the successor's reads.
func (s *sampler) sampleOnce() {
	s.mu.Lock()
	ignore := maps.Clone(s.ignore)
	s.mu.Unlock()
	claims := map[string][]string{}
	start := time.Now()
	claim := func(name, signal string) {
		claims[name] = append(claims[name], fmt.Sprintf("%s@+%dµs", signal, time.Since(start).Microseconds()))
	}
	for _, c := range s.g.cands {
		if ignore[c.name] != "all" && c.hasFile() {
			claim(c.name, "file")
		}
	}
	for _, c := range s.g.cands {
		if ignore[c.name] != "all" && c.httpLeader() {
			claim(c.name, "http")
		}
	}
	labels, err := s.g.roleLabels()
	for name, role := range labels {
		if err == nil && role == elector.RoleLeader && ignore[name] == "" {
			claim(name, "label")
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.samples++
	if len(claims) > 1 {
		s.overlaps++
		if len(s.firstSeen) < 5 {
			s.firstSeen = append(s.firstSeen, describe(start, claims))
		}
	}
}

// finish stops sampling and reports the sample and overlap counts.
func (s *sampler) finish(t *testing.T) (samples, overlaps int) {
	t.Helper()
	close(s.stop)
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.overlaps > 0 {
		t.Logf("first overlapping samples: %s", strings.Join(s.firstSeen, "; "))
	}
	return s.samples, s.overlaps
}

func describe(start time.Time, claims map[string][]string) string {
	var parts []string
	for name, sig := range claims {
		parts = append(parts, name+"="+strings.Join(sig, "+"))
	}
	sort.Strings(parts)
	return start.UTC().Format("15:04:05.000000") + " " + strings.Join(parts, " ")
}
