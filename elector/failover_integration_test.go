//go:build integration

package elector_test

import (
	"os"
	"slices"
	"syscall"
	"testing"
	"time"
)

// gracefulBound is the failover time the product promises after SIGTERM.
const gracefulBound = 2 * time.Second

// crashBound is the failover time after SIGKILL. The killed leader renewed
// at most one retry period (plus a round trip) before the kill; a standby
// sees that renewal at its next poll, and takes over at its first poll
// after a further lease duration. client-go polls every retry period plus
// up to 1.2 × of jitter, so each of the two polls can lag by 2.2 retries:
// lease + retry + 2 × 2.2 × retry, plus a margin of 300ms for API round
// trips and scheduling on a loaded machine.
func crashBound(tm timings) time.Duration {
	const margin = 300 * time.Millisecond
	return tm.lease + tm.retry + time.Duration(2*2.2*float64(tm.retry)) + margin
}

// requireOneLeader checks that leader, and only leader, shows both
// signals, and that the standbys name it.
func requireOneLeader(t *testing.T, g *group, leader *candidate) {
	t.Helper()
	ok := eventually(5*time.Second, func() bool {
		for _, c := range g.cands {
			st, err := c.status()
			want := c == leader
			if err != nil || st.IsLeader != want || st.Leader != leader.name || c.hasFile() != want {
				return false
			}
		}
		return true
	})
	if !ok {
		for _, c := range g.cands {
			st, err := c.status()
			t.Logf("%s: /leader %+v (err %v), file %v", c.name, st, err, c.hasFile())
		}
		t.Fatalf("want %s alone to lead on both signals, and the others to name it", leader.name)
	}
}

func TestThreeCandidatesElectExactlyOneLeader(t *testing.T) {
	g := newGroup(t, 3, fast)
	leader := g.electFirst(t, crashBound(fast))
	s := startSampler(g)
	requireOneLeader(t, g, leader)
	time.Sleep(time.Second)
	samples, overlaps := s.finish(t)
	t.Logf("steady state: %d samples, %d with more than one leader", samples, overlaps)
	if overlaps != 0 {
		t.Errorf("%d samples show more than one leader, want 0", overlaps)
	}
}

func TestSIGTERMFailsOverWithinTwoSeconds(t *testing.T) {
	g := newGroup(t, 3, fast)
	leader := g.electFirst(t, crashBound(fast))
	start := time.Now()
	if code := leader.stop(syscall.SIGTERM, 5*time.Second); code != 0 {
		t.Errorf("leader exited with %d after SIGTERM, want 0", code)
	}
	next, at := g.waitLeader(t, leader, gracefulBound)
	if next == nil {
		t.Fatalf("no new leader within %s of SIGTERM", gracefulBound)
	}
	t.Logf("SIGTERM failover: %s → %s in %s", leader.name, next.name, at.Sub(start).Round(time.Millisecond))
	leader.start(t)
	requireOneLeader(t, g, next)
}

func TestSIGKILLFailsOverWithinLeaseAndRetry(t *testing.T) {
	g := newGroup(t, 3, fast)
	leader := g.electFirst(t, crashBound(fast))
	s := startSampler(g)
	s.skip(leader, "all") // a killed sidecar leaves its file behind
	start := time.Now()
	leader.stop(syscall.SIGKILL, 5*time.Second)
	next, at := g.waitLeader(t, leader, crashBound(fast))
	if next == nil {
		t.Fatalf("no new leader within %s of SIGKILL", crashBound(fast))
	}
	t.Logf("SIGKILL failover: %s → %s in %s (bound %s)", leader.name, next.name, at.Sub(start).Round(time.Millisecond), crashBound(fast))
	// The stale file of the killed leader is older than the renew deadline
	// by the time anyone else leads, so readers checking its age are safe.
	if fi, err := os.Stat(leader.filePath()); err != nil {
		t.Errorf("killed leader's file: %v, want it left behind", err)
	} else if age := at.Sub(fi.ModTime()); age <= fast.renew {
		t.Errorf("killed leader's file was renewed %s before the new leader, want more than the renew deadline %s", age, fast.renew)
	}
	leader.start(t) // the restarted sidecar clears what the killed one left
	requireOneLeader(t, g, next)
	s.skip(leader, "")
	time.Sleep(200 * time.Millisecond)
	samples, overlaps := s.finish(t)
	t.Logf("SIGKILL: %d samples, %d with more than one leader", samples, overlaps)
	if overlaps != 0 {
		t.Errorf("%d samples show more than one leader, want 0", overlaps)
	}
}

func TestFiftyForcedFailoversNeverOverlap(t *testing.T) {
	const (
		failovers = 50
		// hold keeps each leader long enough for several samples.
		hold = 150 * time.Millisecond
	)
	g := newGroup(t, 3, fast)
	leader := g.electFirst(t, crashBound(fast))
	requireOneLeader(t, g, leader)
	s := startSampler(g)
	var times []time.Duration
	for i := range failovers {
		time.Sleep(hold)
		start := time.Now()
		stopped := make(chan int, 1)
		go func(c *candidate) { stopped <- c.stop(syscall.SIGTERM, 5*time.Second) }(leader)
		// The bound is the crash one: this test is about overlaps, and a
		// release the API server is too slow to take falls back to expiry.
		next, at := g.waitLeader(t, leader, crashBound(fast))
		if code := <-stopped; code != 0 {
			t.Errorf("failover %d: %s exited with %d after SIGTERM, want 0", i, leader.name, code)
		}
		if next == nil {
			s.finish(t)
			t.Fatalf("failover %d: no new leader within %s of SIGTERM to %s", i, crashBound(fast), leader.name)
		}
		times = append(times, at.Sub(start))
		leader.start(t)
		leader = next
	}
	samples, overlaps := s.finish(t)
	slices.Sort(times)
	t.Logf("%d SIGTERM failovers: min %s, median %s, max %s; %d samples every %s, %d with more than one leader",
		failovers, times[0].Round(time.Millisecond), times[len(times)/2].Round(time.Millisecond),
		times[len(times)-1].Round(time.Millisecond), samples, samplePeriod, overlaps)
	if overlaps != 0 {
		t.Errorf("%d samples show more than one leader, want 0", overlaps)
	}
	requireOneLeader(t, g, leader)
}
