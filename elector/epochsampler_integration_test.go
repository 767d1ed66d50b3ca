//go:build integration

package elector_test

import (
	"fmt"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"
)

// epochClaim is one read showing a candidate leading in the term of epoch,
// at some moment between from and to.
type epochClaim struct {
	name, signal string
	epoch        int64
	from, to     time.Time
}

func (c epochClaim) String() string {
	return fmt.Sprintf("%s by %s (epoch %d) at %s", c.signal, c.name, c.epoch, c.from.UTC().Format("15:04:05.000000"))
}

// epochSampler reads both signals of every candidate every samplePeriodChaos,
// each candidate in a goroutine of its own so a stopped one does not delay
// the others.
type epochSampler struct {
	g    *group
	stop chan struct{}
	wg   sync.WaitGroup

	mu     sync.Mutex
	claims []epochClaim
}

const samplePeriodChaos = 10 * time.Millisecond

func startEpochSampler(g *group) *epochSampler {
	s := &epochSampler{g: g, stop: make(chan struct{})}
	for _, c := range g.cands {
		s.wg.Go(func() { s.loop(c) })
	}
	return s
}

func (s *epochSampler) loop(c *candidate) {
	tick := time.NewTicker(samplePeriodChaos)
	defer tick.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-tick.C:
		}
		from := time.Now()
		if st, ok := c.freshFile(); ok {
			s.add(epochClaim{c.name, "file", st.Epoch, from, time.Now()})
		}
		from = time.Now()
		if st, err := c.status(); err == nil && st.IsLeader {
			s.add(epochClaim{c.name, "http", st.Epoch, from, time.Now()})
		}
	}
}

func (s *epochSampler) add(c epochClaim) {
	s.mu.Lock()
	s.claims = append(s.claims, c)
	s.mu.Unlock()
}

// finish stops sampling and returns the claim count and the overlaps.
func (s *epochSampler) finish() (int, []string) {
	close(s.stop)
	s.wg.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.claims), overlaps(s.claims)
}

// overlaps finds the certain ones: a claim made entirely after another
// candidate claimed a later epoch. Epochs grow with every change of
// leader, and a term's leadership is one unbroken interval, so the older
// term's holder, still leading after the newer term began, led at the same
// time as the newer holder. A claim of the same epoch by two candidates is
// an overlap as well.
func overlaps(claims []epochClaim) []string {
	byEnd := slices.Clone(claims)
	sort.Slice(byEnd, func(i, j int) bool { return byEnd[i].to.Before(byEnd[j].to) })
	var out []string
	for _, z := range claims {
		// Claims that ended before z began: a prefix of byEnd.
		n := sort.Search(len(byEnd), func(i int) bool { return !byEnd[i].to.Before(z.from) })
		for _, y := range byEnd[:n] {
			if y.name != z.name && y.epoch >= z.epoch {
				out = append(out, fmt.Sprintf("%s, after %s", z, y))
				break
			}
		}
	}
	return out
}

func TestOverlapsCountsOnlyCertainOnes(t *testing.T) {
	at := func(ms int) time.Time { return time.Unix(0, 0).Add(time.Duration(ms) * time.Millisecond) }
	read := func(name string, epoch int64, ms int) epochClaim {
		return epochClaim{name, "http", epoch, at(ms), at(ms + 1)}
	}
	tests := map[string]struct {
		claims []epochClaim
		want   int
	}{
		"a handover to a newer epoch is no overlap":              {[]epochClaim{read("a", 1, 0), read("b", 2, 10)}, 0},
		"the old leader claiming after the new one":              {[]epochClaim{read("a", 1, 0), read("b", 2, 10), read("a", 1, 20)}, 1},
		"reads at the same moment prove nothing":                 {[]epochClaim{read("b", 2, 0), read("a", 1, 0)}, 0},
		"two candidates claiming one epoch, one after the other": {[]epochClaim{read("a", 1, 0), read("b", 1, 10)}, 1},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := overlaps(tc.claims); len(got) != tc.want {
				t.Errorf("overlaps = %q, want %d", got, tc.want)
			}
		})
	}
}
