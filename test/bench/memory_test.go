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

	"github.com/singleton-webhook/singleton-webhook/internal/benchdata"
	"github.com/singleton-webhook/singleton-webhook/internal/testenv"

	"github.com/singleton-webhook/singleton-webhook/internal/testutil"
)

// Shape of the memory benchmark.
const (
	cachedDeployments = 10000
	createWorkers     = 8
	loadDuration      = 10 * time.Second
)

// TestServeMemory measures the resident memory of the real `serve` binary
// (bin/singleton-webhook, as shipped) against a real API server: idle,
// under HTTPS load, and with 10,000 Deployments in its metadata-only cache.
func TestServeMemory(t *testing.T) {
	env := testenv.Start(t, testenv.Options{SkipWebhookConfiguration: true})
	pid := startServe(t, env)
	time.Sleep(3 * time.Second)
	idle := rss(t, pid)

	body := benchdata.Review(benchdata.Deployment(benchdata.RealisticContainers, benchdata.RealisticEnvs))
	pool := certPool(t, env.CABundle)
	var peakLoad int64
	stop := sampleRSS(t, pid, &peakLoad)
	for deadline := time.Now().Add(loadDuration); time.Now().Before(deadline); {
		loadRound(t, env.WebhookURL+"/mutate-apps-v1-deployment", pool, body)
	}
	stop()

	createOrdinary(t, env, cachedDeployments)
	var peakCached int64
	stop = sampleRSS(t, pid, &peakCached)
	time.Sleep(5 * time.Second)
	stop()
	cached := rss(t, pid)

	mib := func(kb int64) string { return fmt.Sprintf("%.1f MiB", float64(kb)/1024) }
	writeFragment(t, "4-memory",
		"## 4. Memory of `serve`",
		"",
		"VmRSS of the `bin/singleton-webhook serve` process (the shipped binary, default flags, connected to a real API server), sampled every 50 ms.",
		"",
		"| state | RSS | target |",
		"|---|---|---|",
		fmt.Sprintf("| idle, after start | %s | |", mib(idle)),
		fmt.Sprintf("| under load (peak over %s of %d keep-alive HTTPS clients) | %s | ≤ 40 MiB |", loadDuration, httpsClients, mib(peakLoad)),
		fmt.Sprintf("| %d Deployments in the cache (peak while syncing / settled) | %s / %s | ≤ 60 MiB |", cachedDeployments, mib(peakCached), mib(cached)),
	)
}

// startServe runs bin/singleton-webhook serve on the Env's webhook port and
// waits until it is ready; it returns the process id.
func startServe(t *testing.T, env *testenv.Env) int {
	bin := filepath.Join(env.Root, "bin", "singleton-webhook")
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("%s is missing: run `make build` first (`make bench` does): %v", bin, err)
	}
	probe := testutil.FreeAddr(t)
	cmd := exec.Command(bin, "serve",
		"--kubeconfig", env.Kubeconfig,
		"--webhook-cert-path", env.CertDir,
		"--webhook-port", strconv.Itoa(env.WebhookPort),
		"--health-probe-bind-address", probe,
		"--metrics-bind-address", "0")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if !testing.Verbose() {
		cmd.Stdout, cmd.Stderr = nil, nil
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
	})
	for deadline := time.Now().Add(30 * time.Second); ; {
		resp, err := http.Get("http://" + probe + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return cmd.Process.Pid
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not become ready: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
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

// createOrdinary creates n small ordinary Deployments with a few workers.
func createOrdinary(t *testing.T, env *testenv.Env, n int) {
	ctx := context.Background()
	if _, err := env.Clientset.CoreV1().Namespaces().Create(ctx,
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "cached"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	api := env.Clientset.AppsV1().Deployments("cached")
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range createWorkers {
		wg.Go(func() {
			for i := range jobs {
				d := benchdata.Deployment(1, 2)
				d.Name, d.Namespace = fmt.Sprintf("app-%05d", i), "cached"
				delete(d.Annotations, "singleton")
				d.Spec.Strategy = appsv1.DeploymentStrategy{}
				if _, err := api.Create(ctx, d, metav1.CreateOptions{}); err != nil {
					t.Errorf("create %s: %v", d.Name, err)
				}
			}
		})
	}
	for i := range n {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
}
