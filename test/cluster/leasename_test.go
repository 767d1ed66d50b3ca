//go:build integration

package cluster

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/singleton-webhook/singleton-webhook/controllers"
	"github.com/singleton-webhook/singleton-webhook/patches"
)

// Timings of the Lease-name test: the election test's, the tightest the
// validation accepts.
const (
	leaseNameRetry = 590 * time.Millisecond
	// leaseNameReps is how many Lease-name changes the test samples: one
	// from the Deployment's own name, then alternating between two names.
	leaseNameReps = 21
)

// TestLeaseNameChangeSampled changes the Lease of a live election of
// three `elect` processes (one per Pod, as in TestElectionOnRealPods)
// leaseNameReps times while a sampler asks every candidate every 10 ms
// whether it leads. Each change is first refused (the message gives the
// procedure; nothing changes, the leader keeps leading), then done as the
// message says: scale to 0, the processes get SIGTERM as from the kubelet
// and their Pods go, change the annotation, scale back, and the new Pods'
// processes run with the newly injected arguments. No sample may see two
// leaders, and the new candidates must have a leader within the lease
// duration + the retry period of their start.
func TestLeaseNameChangeSampled(t *testing.T) {
	ns := newNamespace(t)
	ctx := ctxFor(t, 5*time.Minute)
	cs := cl.Clientset
	if _, err := cs.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "app"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	d := deployment(ns, "elected", 3, map[string]string{
		patches.AnnotationSingleton: "true", patches.AnnotationMode: "election",
		patches.AnnotationLeaseDuration: electLease.String(), patches.AnnotationRenewDeadline: "1710ms", patches.AnnotationRetryPeriod: leaseNameRetry.String(),
	})
	d.Spec.Template.Spec.ServiceAccountName = "app"
	if _, err := cs.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	tr := track(t, cs, ns, "app=elected")
	s := startSampler(t)
	cands, _ := startCandidates(t, tr, ns, "elected")
	s.set(cands)
	if _, err := s.waitLeader(cands, 30*time.Second); err != nil {
		t.Fatal(err)
	}

	var took, down []time.Duration
	lease := "elected" // the Deployment's name: no annotation yet
	for rep := range leaseNameReps {
		next := []string{"lease-a", "lease-b"}[rep%2]
		var tookRep, downRep time.Duration
		cands, tookRep, downRep = changeLease(t, tr, s, ns, cands, lease, next)
		took, down = append(took, tookRep), append(down, downRep)
		t.Logf("change %d, %s → %s: a leader %s after the new candidates' start; no leader for %s", rep+1, lease, next,
			tookRep.Round(time.Millisecond), downRep.Round(time.Millisecond))
		lease = next
		if t.Failed() {
			break
		}
	}
	st := s.close()
	slices.Sort(took)
	slices.Sort(down)
	t.Logf("%d Lease-name changes, %d samples (every 10 ms) of the candidates, %d with two leaders; "+
		"time to a leader after the new candidates' start: median %s, max %s (limit %s); no leader during a change: median %s, max %s",
		len(took), st.samples, st.overlaps, took[len(took)/2].Round(time.Millisecond), took[len(took)-1].Round(time.Millisecond),
		electLease+leaseNameRetry, down[len(down)/2].Round(time.Millisecond), down[len(down)-1].Round(time.Millisecond))
	if st.overlaps > 0 {
		t.Errorf("%d of %d samples saw two leaders, first: %s", st.overlaps, st.samples, st.firstOverlap)
	}
	if len(took) < leaseNameReps {
		t.Errorf("%d Lease-name changes done, want %d", len(took), leaseNameReps)
	}
	if want := len(took) * 100; st.samples < want {
		t.Errorf("%d samples over %d changes, want at least %d: the sampler did not keep up", st.samples, len(took), want)
	}
}

// changeLease moves the election of the Deployment elected, led by one of
// cands on Lease from, to Lease to: refused first, then by the documented
// procedure. It returns the new candidates, the time from their start to a
// leader, and how long the election had no leader.
func changeLease(t *testing.T, tr *tracker, s *sampler, ns string, cands []*electProcess, from, to string) ([]*electProcess, time.Duration, time.Duration) {
	t.Helper()
	ctx := ctxFor(t, 2*time.Minute)
	deploys := cl.Clientset.AppsV1().Deployments(ns)
	before, err := deploys.Get(ctx, "elected", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	leader, changes := s.leader()
	if leader == nil {
		t.Fatal("no leader before the change")
	}

	// Refused: the message gives the procedure, and nothing changes.
	_, stderr, err := tryRun(t, "-n", ns, "annotate", "--overwrite", "deploy/elected", patches.AnnotationLeaseName+"="+to)
	if err == nil || !strings.Contains(stderr, "kubectl scale deployment/elected --replicas=0") {
		t.Fatalf("the Lease change was accepted or refused without the procedure (err %v): %s", err, stderr)
	}
	after, err := deploys.Get(ctx, "elected", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if after.Generation != before.Generation || controllers.LeaseName(after) != from {
		t.Errorf("after the refused change: generation %d → %d, Lease %q, want %d and %q", before.Generation, after.Generation,
			controllers.LeaseName(after), before.Generation, from)
	}

	// The procedure: scale to 0; the kubelet stops the containers.
	run(t, "-n", ns, "scale", "deploy/elected", "--replicas=0")
	tr.waitFor(time.Minute, "every Pod terminating", func(ps []*corev1.Pod) bool {
		return !slices.ContainsFunc(ps, func(p *corev1.Pod) bool { return p.DeletionTimestamp == nil })
	})
	if l, n := s.leader(); l != leader || n != changes {
		t.Errorf("the leader changed during the refused change and the scale to 0 (%d changes, now %s), want %s kept", n-changes, name(l), leader.pod)
	}
	stopped := time.Now()
	var wg sync.WaitGroup
	for _, c := range cands {
		wg.Add(1)
		go func() { defer wg.Done(); c.stop(syscall.SIGTERM) }()
	}
	wg.Wait()
	for _, p := range tr.snapshot() {
		if err := cl.MarkStopped(ctx, ns, p.Name); err != nil {
			t.Fatal(err)
		}
	}
	tr.waitFor(time.Minute, "every Pod gone", func(ps []*corev1.Pod) bool { return len(ps) == 0 })
	waitUntil(t, time.Minute, "the Deployment's status to show no Pod", func() bool {
		cur, err := deploys.Get(ctx, "elected", metav1.GetOptions{})
		return err == nil && cur.Status.ObservedGeneration >= cur.Generation && cur.Status.Replicas == 0 &&
			(cur.Status.TerminatingReplicas == nil || *cur.Status.TerminatingReplicas == 0)
	})
	run(t, "-n", ns, "annotate", "--overwrite", "deploy/elected", patches.AnnotationLeaseName+"="+to)
	run(t, "-n", ns, "scale", "deploy/elected", "--replicas=3")

	next, start := startCandidates(t, tr, ns, to)
	s.set(append(slices.Clone(cands), next...))
	at, err := s.waitLeader(next, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	s.set(next)
	took := at.Sub(start)
	if limit := electLease + leaseNameRetry; took > limit {
		t.Errorf("%s → %s: a leader %s after the new candidates' start, want within the lease duration + retry period %s", from, to, took, limit)
	}
	return next, took, at.Sub(stopped)
}

// startCandidates waits for the 3 Ready Pods of the Deployment elected and
// for the elector's Role to grant Lease lease, then runs one `elect` per
// Pod with the arguments now injected in the Deployment's template. It
// returns them and when the first started.
func startCandidates(t *testing.T, tr *tracker, ns, lease string) ([]*electProcess, time.Time) {
	t.Helper()
	ctx := ctxFor(t, time.Minute)
	cur, err := cl.Clientset.AppsV1().Deployments(ns).Get(ctx, "elected", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	args := electorOf(t, cur.Spec.Template.Spec).Args
	if !slices.Contains(args, "--lease-name="+lease) {
		t.Fatalf("the injected arguments %v do not name Lease %q", args, lease)
	}
	tr.waitFor(time.Minute, "3 Ready Pods", func(ps []*corev1.Pod) bool { return countServing(ps) == 3 })
	waitUntil(t, time.Minute, "the elector's Role for Lease "+lease, func() bool {
		role, err := cl.Clientset.RbacV1().Roles(ns).Get(ctx, controllers.RoleBindingPrefix+"elected", metav1.GetOptions{})
		if err != nil || len(role.Rules) != 1 || !slices.Equal(role.Rules[0].ResourceNames, []string{lease}) {
			return false
		}
		_, errLease := cl.Clientset.CoordinationV1().Leases(ns).Get(ctx, lease, metav1.GetOptions{})
		_, errBinding := cl.Clientset.RbacV1().RoleBindings(ns).Get(ctx, controllers.RoleBindingPrefix+"elected", metav1.GetOptions{})
		return errLease == nil && errBinding == nil
	})
	start := time.Now()
	var cands []*electProcess
	for _, p := range tr.snapshot() {
		cands = append(cands, startElect(t, ns, p, args))
	}
	return cands, start
}

// sampler asks every candidate whether it leads, every 10 ms.
type sampler struct {
	stop context.CancelFunc
	done chan struct{}

	mu    sync.Mutex
	cands []*electProcess
	st    samplerStats
	// last is the sole leader of the last sample (nil: none, or two);
	// changes counts the samples where that differed from the sample
	// before; since is when the first sample of last ended.
	last    *electProcess
	changes int
	since   time.Time
}

type samplerStats struct {
	samples, overlaps int
	firstOverlap      string
}

func startSampler(t *testing.T) *sampler {
	ctx, cancel := context.WithCancel(context.Background())
	s := &sampler{stop: cancel, done: make(chan struct{})}
	go s.loop(ctx)
	t.Cleanup(func() { s.close() })
	return s
}

// set replaces the candidates sampled.
func (s *sampler) set(cands []*electProcess) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cands = slices.Clone(cands)
}

func (s *sampler) loop(ctx context.Context) {
	defer close(s.done)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		s.mu.Lock()
		cands := s.cands
		s.mu.Unlock()
		if len(cands) == 0 {
			continue
		}
		leads := make([]bool, len(cands))
		var wg sync.WaitGroup
		for i, c := range cands {
			wg.Add(1)
			go func() { defer wg.Done(); leads[i] = c.isLeader() }()
		}
		wg.Wait()
		s.record(cands, leads)
	}
}

// record counts one sample.
func (s *sampler) record(cands []*electProcess, leads []bool) {
	now := time.Now()
	var leaders []string
	var sole *electProcess
	for i, l := range leads {
		if l {
			leaders = append(leaders, cands[i].pod)
			sole = cands[i]
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st.samples++
	if len(leaders) > 1 {
		s.st.overlaps++
		if s.st.firstOverlap == "" {
			s.st.firstOverlap = fmt.Sprintf("%s at %s", strings.Join(leaders, " and "), now.Format(time.StampMilli))
		}
		sole = nil
	}
	if sole != s.last {
		s.changes++
		s.last, s.since = sole, now
	}
}

// leader is the sole leader of the last sample (nil: none) and the count
// of changes so far.
func (s *sampler) leader() (*electProcess, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last, s.changes
}

// waitLeader waits until the samples find one of cands the sole leader,
// and returns when the first sample that did ended.
func (s *sampler) waitLeader(cands []*electProcess, d time.Duration) (time.Time, error) {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		s.mu.Lock()
		l, at := s.last, s.since
		s.mu.Unlock()
		if l != nil && slices.Contains(cands, l) {
			return at, nil
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Time{}, fmt.Errorf("no sole leader among the candidates within %s", d)
}

func name(e *electProcess) string {
	if e == nil {
		return "no leader"
	}
	return e.pod
}

// close stops the sampler and returns what it counted.
func (s *sampler) close() samplerStats {
	s.stop()
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st
}
