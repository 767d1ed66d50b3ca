//go:build bench

package bench

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/singleton-webhook/singleton-webhook/internal/app"
	"github.com/singleton-webhook/singleton-webhook/internal/benchdata"
	"github.com/singleton-webhook/singleton-webhook/internal/testenv"
	"github.com/singleton-webhook/singleton-webhook/internal/testutil"
	"github.com/singleton-webhook/singleton-webhook/patches"
)

// Shape of the memory benchmark.
const (
	// memorySingletons are the singletons among the cluster's Deployments.
	memorySingletons = 1000
	createWorkers    = 16
	loadDuration     = 10 * time.Second
	// settleAfterDrain is how long a serve started on a populated cluster
	// runs, once its controllers' queues drained (drift reads each singleton
	// once at start, at the client's 20 requests/s), before its RSS is
	// read.
	settleAfterDrain = 10 * time.Second
	// drainTimeout bounds the wait for the queues.
	drainTimeout = 3 * time.Minute
)

// memoryClusters are the numbers of Deployments in the cluster at which a
// fresh serve is measured; the last is the target's.
var memoryClusters = []int{10000, 100000}

// TestServeMemory measures the resident memory of the real `serve` binary
// (bin/singleton-webhook, as shipped) against a real API server: idle,
// under HTTPS load, and started on clusters of 10,000 and 100,000
// Deployments of which 1,000 are singletons. Its caches hold the labelled
// singletons only, so the RSS must not grow with the cluster: the slope per
// 10,000 Deployments is reported. Under load and on the largest cluster it
// runs again with the collector's target halved (halfGC).
func TestServeMemory(t *testing.T) {
	env := testenv.Start(t, testenv.Options{SkipWebhookConfiguration: true})
	idle, peakLoad, rate := underLoad(t, env)
	_, peakLoadHalf, rateHalf := underLoad(t, env, halfGC)

	mib := func(kb int64) string { return fmt.Sprintf("%.1f MiB", float64(kb)/1024) }
	lines := []string{
		"## 4. Memory of `serve`",
		"",
		"VmRSS of the `bin/singleton-webhook serve` process (the shipped binary, default flags, connected to a real API server), sampled every 50 ms. " +
			"Its caches hold only the Deployments admission labelled `singleton.dev/mode` (and their Pods); a fresh `serve` is started on each cluster size, " +
			"so its one paged list of Deployments at start (pages of 500, metadata only) is in the peak. " +
			"The rows with " + halfGC + " run the same binary with the Go collector's target halved (not the shipped default): what a lower target buys, and costs.",
		"",
		"| state | RSS | target |",
		"|---|---|---|",
		fmt.Sprintf("| idle, after start | %s | ≤ 35 MiB |", mib(idle)),
		fmt.Sprintf("| under load (peak over %s of %d keep-alive HTTPS clients; %.0f reviews/s) | %s | ≤ 45 MiB |", loadDuration, httpsClients, rate, mib(peakLoad)),
		fmt.Sprintf("| under load, %s (%.0f reviews/s) | %s | |", halfGC, rateHalf, mib(peakLoadHalf)),
	}
	created := 0
	var settled []int64
	last := len(memoryClusters) - 1
	for i, n := range memoryClusters {
		createDeployments(t, env, created, n)
		created = n
		target := ""
		if i == last {
			target = "≤ 45 MiB settled"
		}
		r, row := settle(t, env, n, target)
		settled = append(settled, r)
		lines = append(lines, row)
	}
	_, row := settle(t, env, memoryClusters[last], "", halfGC)
	per10k := float64(settled[last]-settled[0]) / float64(memoryClusters[last]-memoryClusters[0]) * 10000
	lines = append(lines, row,
		fmt.Sprintf("| slope, settled %d → %d Deployments | %+.2f MiB per 10,000 | flat |", memoryClusters[0], memoryClusters[last], per10k/1024))
	writeFragment(t, "4-memory", lines...)
}

// halfGC is the environment of the rows that halve the Go collector's
// target.
const halfGC = "GOGC=50"

// underLoad starts serve with the environment extra, and returns its RSS at
// idle, its peak RSS under loadDuration of HTTPS load, and the reviews it
// served per second.
func underLoad(t *testing.T, env *testenv.Env, extra ...string) (idle, peak int64, rate float64) {
	s := startServe(t, env, extra...)
	defer s.stop()
	time.Sleep(3 * time.Second)
	idle = rss(t, s.pid)
	body := benchdata.Review(benchdata.Deployment(benchdata.RealisticContainers, benchdata.RealisticEnvs))
	pool := certPool(t, env.CABundle)
	stop := sampleRSS(t, s.pid, &peak)
	var rates []float64
	for deadline := time.Now().Add(loadDuration); time.Now().Before(deadline); {
		r, _ := loadRound(t, env.WebhookURL+"/mutate-apps-v1-deployment", pool, body)
		rates = append(rates, r)
	}
	stop()
	return idle, peak, median(rates)
}

// settle starts serve with the environment extra on the cluster of n
// Deployments, waits until its controllers' queues drained and settle
// more, and returns its RSS then and figure 4's row, with target in its
// target column.
func settle(t *testing.T, env *testenv.Env, n int, target string, extra ...string) (int64, string) {
	s := startServe(t, env, extra...)
	defer s.stop()
	var peak int64
	stop := sampleRSS(t, s.pid, &peak)
	drained := s.waitDrained(t)
	time.Sleep(settleAfterDrain)
	stop()
	r := rss(t, s.pid)
	deps, pods := s.cached(t)
	mib := func(kb int64) string { return fmt.Sprintf("%.1f MiB", float64(kb)/1024) }
	with := ""
	if len(extra) > 0 {
		with = ", " + strings.Join(extra, " ")
	}
	t.Logf("%d Deployments%s: peak %s, queues drained after %s, settled %s, cache: %d Deployments, %d Pods", n, with, mib(peak), drained, mib(r), deps, pods)
	return r, fmt.Sprintf("| %d Deployments, %d singletons%s (peak from start / settled, %s after the start-up reconciles ended at %s; cached: %d Deployments, %d Pods) | %s / %s | %s |",
		n, memorySingletons, with, settleAfterDrain, drained.Round(time.Second), deps, pods, mib(peak), mib(r), target)
}

// serve is a running `serve` process.
type serve struct {
	pid     int
	metrics string
	stop    func()
}

// startServe runs bin/singleton-webhook serve on the Env's webhook port,
// with plain-HTTP metrics and extraEnv added to the environment, and waits
// until it is ready.
func startServe(t *testing.T, env *testenv.Env, extraEnv ...string) *serve {
	bin := filepath.Join(env.Root, "bin", "singleton-webhook")
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("%s is missing: run `make build` first (`make bench` does): %v", bin, err)
	}
	probe, metrics := testutil.FreeAddr(t), testutil.FreeAddr(t)
	cmd := exec.Command(bin, "serve",
		"--kubeconfig", env.Kubeconfig,
		"--webhook-cert-path", env.CertDir,
		"--webhook-port", strconv.Itoa(env.WebhookPort),
		"--health-probe-bind-address", probe,
		"--metrics-bind-address", metrics, "--metrics-secure=false")
	cmd.Env = append(os.Environ(), extraEnv...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if !testing.Verbose() {
		cmd.Stdout, cmd.Stderr = nil, nil
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	stop := func() {
		once.Do(func() {
			_ = cmd.Process.Signal(os.Interrupt)
			_ = cmd.Wait()
		})
	}
	t.Cleanup(stop)
	for deadline := time.Now().Add(60 * time.Second); ; {
		resp, err := http.Get("http://" + probe + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return &serve{pid: cmd.Process.Pid, metrics: metrics, stop: stop}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not become ready: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitDrained waits until the drift controller has reconciled every
// singleton once and the process's controllers have no work queued, from
// its controller_runtime_reconcile_total and workqueue_depth metrics, twice
// a second apart, and returns how long after the call that was.
func (s *serve) waitDrained(t *testing.T) time.Duration {
	start := time.Now()
	quiet := 0
	depth, drifted := 0.0, 0.0
	for deadline := start.Add(drainTimeout); quiet < 2; time.Sleep(time.Second) {
		if time.Now().After(deadline) {
			t.Fatalf("serve's controllers did not drain in %s: drift reconciled %v of %d singletons, %v items queued",
				drainTimeout, drifted, memorySingletons, depth)
		}
		depth, drifted = 0, 0
		// Both are served once the controllers have started.
		queues := s.series(t, "workqueue_depth")
		for _, v := range queues {
			depth += v
		}
		for labels, v := range s.series(t, "controller_runtime_reconcile_total") {
			if strings.Contains(labels, `controller="singleton-drift"`) {
				drifted += v
			}
		}
		if len(queues) > 0 && depth == 0 && drifted >= memorySingletons {
			quiet++
		} else {
			quiet = 0
		}
	}
	return time.Since(start)
}

// cached returns how many Deployments and Pods the process's caches hold,
// from its singleton_webhook_cached_objects metric.
func (s *serve) cached(t *testing.T) (deployments, pods int) {
	deployments, pods = -1, -1
	for labels, v := range s.metric(t, app.CachedObjectsMetric) {
		switch {
		case strings.Contains(labels, `kind="Deployment"`):
			deployments = int(v)
		case strings.Contains(labels, `kind="Pod"`):
			pods = int(v)
		}
	}
	if deployments < 0 || pods < 0 {
		t.Fatalf("serve serves no %s for Deployments and Pods", app.CachedObjectsMetric)
	}
	return deployments, pods
}

// metric returns the process's series of the metric name, by their labels;
// a metric it does not serve fails the test.
func (s *serve) metric(t *testing.T, name string) map[string]float64 {
	series := s.series(t, name)
	if len(series) == 0 {
		t.Fatalf("serve serves no %s", name)
	}
	return series
}

// series returns the process's series of the metric name, by their labels,
// none if it does not serve it.
func (s *serve) series(t *testing.T, name string) map[string]float64 {
	resp, err := http.Get("http://" + s.metrics + "/metrics")
	if err != nil {
		t.Fatalf("scrape metrics: %v", err)
	}
	defer resp.Body.Close()
	series := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), name)
		if !ok || (!strings.HasPrefix(line, "{") && !strings.HasPrefix(line, " ")) {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", sc.Text(), err)
		}
		series[strings.Join(f[:len(f)-1], " ")] = v
	}
	return series
}

// rss returns the process's VmRSS in KiB.
func rss(t *testing.T, pid int) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb
		}
	}
	t.Fatalf("no VmRSS in /proc/%d/status", pid)
	return 0
}

// sampleRSS records the peak RSS of pid into peak until the returned stop.
func sampleRSS(t *testing.T, pid int, peak *int64) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			*peak = max(*peak, rss(t, pid))
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

// createDeployments creates the Deployments from..to-1 of the benchmark's
// cluster, small ones, with many workers: every (to/memorySingletons)th of
// the first ones a singleton as admission stores it (labelled, pinned,
// gated), until there are memorySingletons, the others ordinary.
func createDeployments(t *testing.T, env *testenv.Env, from, to int) {
	ctx := context.Background()
	if from == 0 {
		if _, err := env.Clientset.CoreV1().Namespaces().Create(ctx,
			&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "cached"}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	every := memoryClusters[0] / memorySingletons
	api := env.Clientset.AppsV1().Deployments("cached")
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range createWorkers {
		wg.Go(func() {
			for i := range jobs {
				d := benchdata.Deployment(1, 2)
				d.Name, d.Namespace = fmt.Sprintf("app-%06d", i), "cached"
				if i < memoryClusters[0] && i%every == 0 {
					if _, err := patches.Apply(d, patches.Policy{}); err != nil {
						t.Errorf("make %s a singleton: %v", d.Name, err)
						continue
					}
				} else {
					delete(d.Annotations, "singleton")
					d.Spec.Strategy = appsv1.DeploymentStrategy{}
				}
				if _, err := api.Create(ctx, d, metav1.CreateOptions{}); err != nil {
					t.Errorf("create %s: %v", d.Name, err)
				}
			}
		})
	}
	start := time.Now()
	for i := from; i < to; i++ {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	t.Logf("created Deployments %d..%d in %s", from, to-1, time.Since(start).Round(time.Second))
}
