//go:build integration

package elector_test

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

var (
	chaosRounds = flag.Int("chaos-rounds", 100, "rounds of faults on the leader in TestChaosNeverTwoLeaders, over all groups")
	chaosGroups = flag.Int("chaos-groups", 4, "groups of three candidates, each on its own Lease, that run the chaos rounds concurrently")
	chaosSeed   = flag.Uint64("chaos-seed", 0, "seed of the random faults; 0 picks one (the test logs it)")
	chaosTimes  = flag.String("chaos-timings", "", "lease/renew/retry of the chaos candidates, e.g. 2s/1.5s/300ms; default the tightest accepted")
)

// chaosTimings are -chaos-timings, else tightest.
func chaosTimings(t *testing.T) timings {
	if *chaosTimes == "" {
		return tightest
	}
	var tm timings
	parts := strings.Split(*chaosTimes, "/")
	if len(parts) != 3 {
		t.Fatalf("-chaos-timings %q: want lease/renew/retry", *chaosTimes)
	}
	for i, d := range []*time.Duration{&tm.lease, &tm.renew, &tm.retry} {
		v, err := time.ParseDuration(parts[i])
		if err != nil {
			t.Fatalf("-chaos-timings %q: %v", *chaosTimes, err)
		}
		*d = v
	}
	return tm
}

// tightest are the tightest timings the validation accepts: the shortest
// lease, the longest renew deadline it allows (2s − 2% − 250ms) and the
// longest retry period that renew deadline allows (1s + 1.2 × 590ms <
// 1.71s).
var tightest = timings{lease: 2 * time.Second, renew: 1710 * time.Millisecond, retry: 590 * time.Millisecond}

// faults are what a chaos round does to the leader.
var faults = []string{"SIGTERM", "SIGKILL", "SIGSTOP", "cut"}

// TestChaosNeverTwoLeaders runs rounds of random faults on the leader of
// three candidates, each reaching the API server through its own proxy, at
// the tightest accepted timings, while every candidate's two signals (GET
// /leader and the leader file, valid until its validUntil) are sampled
// every 10ms: no sample may show two leaders at once.
func TestChaosNeverTwoLeaders(t *testing.T) {
	seed := *chaosSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	tm := chaosTimings(t)
	t.Logf("chaos: %d rounds over %d groups, timings %s/%s/%s, seed %d (rerun with -chaos-seed=%d)",
		*chaosRounds, *chaosGroups, tm.lease, tm.renew, tm.retry, seed, seed)
	groups := max(1, *chaosGroups)
	results := make([][]roundResult, groups)
	t.Run("groups", func(t *testing.T) {
		for i := range groups {
			rounds := *chaosRounds / groups
			if i < *chaosRounds%groups {
				rounds++
			}
			rng := rand.New(rand.NewPCG(seed, uint64(i)))
			t.Run(fmt.Sprintf("group-%d", i), func(t *testing.T) {
				t.Parallel()
				results[i] = runChaosGroup(t, i, rounds, tm, rng)
			})
		}
	})
	reportChaos(t, results)
}

// roundResult is one round: the fault, the takeover time, and the sampler's
// counts of that group for the round.
type roundResult struct {
	fault    string
	takeover time.Duration
}

func runChaosGroup(t *testing.T, idx, rounds int, tm timings, rng *rand.Rand) []roundResult {
	g := newGroup(t, 3, tm, "--zap-log-level=info")
	for _, c := range g.cands {
		px := newProxy(t)
		c.proxy = px
		c.kubeconfig = filepath.Join(t.TempDir(), "kubeconfig")
		if err := writeKubeconfig(c.kubeconfig, cluster.cfg, "https://"+px.Addr); err != nil {
			t.Fatal(err)
		}
		c.start(t)
	}
	s := startEpochSampler(g)
	var out []roundResult
	defer func() {
		claims, overlaps := s.finish()
		t.Logf("group %d: %d rounds, %d leader claims sampled, %d overlaps", idx, len(out), claims, len(overlaps))
		for _, o := range overlaps[:min(len(overlaps), 5)] {
			t.Errorf("group %d: two leaders at once: %s", idx, o)
		}
	}()
	leader, _ := g.waitFresh(nil, 10*time.Second)
	if leader == nil {
		t.Errorf("group %d: no leader elected", idx)
		return out
	}
	for round := range rounds {
		time.Sleep(time.Duration(200+rng.IntN(300)) * time.Millisecond) // let the leader renew a few times
		fault := faults[rng.IntN(len(faults))]
		next, took, err := chaosRound(t, g, leader, fault)
		if err != nil {
			t.Errorf("group %d round %d (%s on %s): %v", idx, round, fault, leader.name, err)
			return out
		}
		out = append(out, roundResult{fault: fault, takeover: took})
		leader = next
	}
	return out
}

// chaosRound applies one fault to the leader, waits for another candidate
// to lead, and brings the faulted one back as a standby.
func chaosRound(t *testing.T, g *group, leader *candidate, fault string) (*candidate, time.Duration, error) {
	const bound = 15 * time.Second // liveness only; safety is the sampler's
	start := time.Now()
	var stopped chan int
	switch fault {
	case "SIGTERM", "SIGKILL":
		sig := map[string]syscall.Signal{"SIGTERM": syscall.SIGTERM, "SIGKILL": syscall.SIGKILL}[fault]
		stopped = make(chan int, 1)
		go func() { stopped <- leader.stop(sig, 10*time.Second) }()
	case "SIGSTOP":
		leader.signal(syscall.SIGSTOP)
	case "cut":
		leader.proxy.Cut()
	}
	next, at := g.waitFresh(leader, bound)
	if next == nil {
		return nil, 0, fmt.Errorf("no other candidate led within %s", bound)
	}
	took := at.Sub(start)
	switch fault {
	case "SIGTERM", "SIGKILL":
		<-stopped
		leader.start(t)
	case "SIGSTOP":
		// Stopped beyond the lease, then resumed: it wakes past its deadline.
		time.Sleep(time.Until(start.Add(leader.tm.lease + 500*time.Millisecond)))
		leader.signal(syscall.SIGCONT)
	case "cut":
		leader.proxy.Heal(t)
	}
	if !eventually(bound, func() bool { st, err := leader.status(); return err == nil && !st.IsLeader && st.Leader != "" }) {
		return nil, 0, fmt.Errorf("%s did not come back as a standby after %s", leader.name, fault)
	}
	return next, took, nil
}

// reportChaos logs the takeover times per fault, in a form BENCHMARKS.md
// quotes, and fails if fewer rounds ran than asked.
func reportChaos(t *testing.T, results [][]roundResult) {
	byFault := map[string][]time.Duration{}
	n := 0
	for _, rs := range results {
		for _, r := range rs {
			byFault[r.fault] = append(byFault[r.fault], r.takeover)
			n++
		}
	}
	for _, f := range faults {
		ts := byFault[f]
		if len(ts) == 0 {
			continue
		}
		slices.Sort(ts)
		t.Logf("CHAOS fault=%s rounds=%d takeover min=%dms median=%dms p90=%dms max=%dms", f, len(ts),
			ts[0].Milliseconds(), ts[len(ts)/2].Milliseconds(), ts[len(ts)*9/10].Milliseconds(), ts[len(ts)-1].Milliseconds())
	}
	if n < *chaosRounds {
		t.Errorf("%d of %d rounds ran", n, *chaosRounds)
	}
}

// waitFresh waits for a candidate other than except to show a valid leader
// file and returns it with the time it was seen.
func (g *group) waitFresh(except *candidate, timeout time.Duration) (*candidate, time.Time) {
	var leader *candidate
	eventually(timeout, func() bool {
		for _, c := range g.cands {
			if _, ok := c.freshFile(); ok && c != except {
				leader = c
				return true
			}
		}
		return false
	})
	return leader, time.Now()
}
