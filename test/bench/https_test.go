//go:build bench

package bench

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	ctrlwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/singleton-webhook/singleton-webhook/certs"
	"github.com/singleton-webhook/singleton-webhook/internal/benchdata"
	"github.com/singleton-webhook/singleton-webhook/patches"
	"github.com/singleton-webhook/singleton-webhook/webhook"

	"github.com/singleton-webhook/singleton-webhook/internal/testutil"
)

// Load shape of the HTTPS benchmark: keep-alive clients, requests per round,
// rounds per handler (interleaved).
const (
	httpsClients  = 8
	httpsRequests = 3000
	httpsRounds   = 5
	noopPath      = "/noop"
)

type allowAll struct{}

func (allowAll) Handle(context.Context, admission.Request) admission.Response {
	return admission.Allowed("")
}

// TestHTTPSThroughput serves the product's handlers and a no-op handler from
// one admission server (same code, TLS settings, HTTP stack and transport
// checks: the no-op sits behind the same webhook.HTTPHandler) and loads
// each in interleaved rounds with concurrent keep-alive clients on loopback.
func TestHTTPSThroughput(t *testing.T) {
	logf.SetLogger(logr.Discard())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr, pool := startServer(ctx, t)
	body := benchdata.Review(benchdata.Deployment(benchdata.RealisticContainers, benchdata.RealisticEnvs))

	paths := map[string]string{"singleton-webhook": webhook.DeploymentPath, "no-op": noopPath}
	tput := map[string][]float64{}
	lat := map[string][]time.Duration{}
	for range httpsRounds {
		for _, name := range []string{"no-op", "singleton-webhook"} {
			rps, l := loadRound(t, "https://"+addr+paths[name], pool, body)
			tput[name] = append(tput[name], rps)
			lat[name] = append(lat[name], l...)
		}
	}
	row := func(name string) string {
		l := lat[name]
		slices.Sort(l)
		return fmt.Sprintf("| %s | %.0f | %s | %s |", name, median(tput[name]),
			ms(percentile(l, 50)), ms(percentile(l, 99)))
	}
	ratio := median(tput["singleton-webhook"]) / median(tput["no-op"])
	writeFragment(t, "2-https",
		"## 2. HTTPS throughput and latency of `serve` on loopback",
		"",
		fmt.Sprintf("%d keep-alive clients, %d requests a round, %d interleaved rounds per handler, realistic Deployment (%d B review); both handlers on one server (same TLS 1.3, HTTP/1.1 settings).",
			httpsClients, httpsRequests, httpsRounds, len(body)),
		"",
		"| handler | median throughput (req/s) | p50 | p99 |",
		"|---|---|---|---|",
		row("no-op"),
		row("singleton-webhook"),
		"",
		fmt.Sprintf("**Throughput ratio (ours / no-op): %.2f×** (target ≥ 0.9×).", ratio),
	)
}

// startServer runs the admission server on a free loopback port with the
// product's handlers and the no-op one; it returns the address and the CA.
func startServer(ctx context.Context, t *testing.T) (string, *x509.CertPool) {
	ss, err := certs.NewSelfSigned([]string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	port := testutil.FreePort(t)
	srv := ctrlwebhook.NewServer(ctrlwebhook.Options{
		Host: "127.0.0.1",
		Port: port,
		TLSOpts: []func(*tls.Config){func(c *tls.Config) {
			c.MinVersion = tls.VersionTLS13
			c.NextProtos = []string{"http/1.1"}
			c.GetCertificate = ss.GetCertificate
		}},
	})
	webhook.NewHandlers(patches.Policy{}, nil).Register(srv)
	srv.Register(noopPath, webhook.NewHTTPHandler(webhook.ResourceDeployments, allowAll{}, nil))
	go func() {
		if err := srv.Start(ctx); err != nil {
			t.Error(err)
		}
	}()
	pool := certPool(t, ss.CAPEM)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool})
		if err == nil {
			c.Close()
			return addr, pool
		}
		if time.Now().After(deadline) {
			t.Fatalf("server did not start: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// loadRound sends httpsRequests reviews from httpsClients keep-alive clients
// and returns the throughput and every request's latency.
func loadRound(t *testing.T, url string, pool *x509.CertPool, body []byte) (float64, []time.Duration) {
	tr := &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS13},
		MaxIdleConnsPerHost: httpsClients,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	var mu sync.Mutex
	var lat []time.Duration
	var failures int
	per := httpsRequests / httpsClients
	start := time.Now()
	var wg sync.WaitGroup
	for range httpsClients {
		wg.Go(func() {
			own := make([]time.Duration, 0, per)
			bad := 0
			for range per {
				t0 := time.Now()
				resp, err := client.Post(url, "application/json", bytes.NewReader(body))
				if err != nil {
					bad++
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					bad++
				}
				own = append(own, time.Since(t0))
			}
			mu.Lock()
			lat = append(lat, own...)
			failures += bad
			mu.Unlock()
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if failures > 0 {
		t.Fatalf("%s: %d failed requests", url, failures)
	}
	return float64(per*httpsClients) / elapsed.Seconds(), lat
}
