//go:build integration

package app_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/singleton-webhook/singleton-webhook/controllers"
	"github.com/singleton-webhook/singleton-webhook/internal/app"
	"github.com/singleton-webhook/singleton-webhook/internal/testenv"
	"github.com/singleton-webhook/singleton-webhook/internal/testutil"
)

// TestChartMetricsAreServed runs serve as the binary runs it (leader
// election on, one election Lease of the webhook's in the cluster, one
// review answered) and scrapes it for every metric the chart's alerts and
// dashboard select (charts/singleton-webhook/files/metrics.txt, written by
// hack/promql from the parsed expressions).
func TestChartMetricsAreServed(t *testing.T) {
	env := testenv.Start(t, testenv.Options{SkipWebhookConfiguration: true})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	now := metav1.NewMicroTime(time.Now())
	_, err := env.Clientset.CoordinationV1().Leases("default").Create(ctx, &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: "app", Labels: map[string]string{controllers.ManagedByLabel: controllers.ManagedBy}},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To("app-0"), LeaseDurationSeconds: ptr.To(int32(15)), RenewTime: &now,
			LeaseTransitions: ptr.To(int32(2))}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ports := make([]int, 3)
	for i := range ports {
		if ports[i], err = testutil.PickPort(); err != nil {
			t.Fatal(err)
		}
	}
	serveCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- app.Serve(serveCtx, "v0.0.0-test", []string{"--kubeconfig", env.Kubeconfig, "--self-signed",
			"--webhook-port", strconv.Itoa(ports[0]), "--health-probe-bind-address", "127.0.0.1:" + strconv.Itoa(ports[1]),
			"--metrics-bind-address", "127.0.0.1:" + strconv.Itoa(ports[2]), "--metrics-secure=false",
			"--leader-elect", "--leader-election-namespace", "default"}, io.Discard)
	}()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	}()
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}}} //nolint:gosec // a local self-signed server
	want := chartMetrics(t)
	var missing []string
	for ctx.Err() == nil {
		review := `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u1",` +
			`"kind":{"group":"apps","version":"v1","kind":"Deployment"},"resource":{"group":"apps","version":"v1","resource":"deployments"},` +
			`"name":"app","namespace":"default","operation":"CREATE","object":{"apiVersion":"apps/v1","kind":"Deployment",` +
			`"metadata":{"name":"app","namespace":"default","annotations":{"singleton":"true"}},"spec":{"replicas":3}}}}`
		if resp, err := client.Post(fmt.Sprintf("https://127.0.0.1:%d/mutate-apps-v1-deployment", ports[0]), "application/json", strings.NewReader(review)); err == nil {
			resp.Body.Close()
		}
		families := scrapeFamilies(fmt.Sprintf("http://127.0.0.1:%d/metrics", ports[2]))
		missing = missing[:0]
		for _, name := range want {
			if !served(families, name) {
				missing = append(missing, name)
			}
		}
		if len(missing) == 0 {
			t.Logf("all %d metrics of the chart served: %s", len(want), strings.Join(want, ", "))
			uncompressed(t, fmt.Sprintf("http://127.0.0.1:%d/metrics", ports[2]))
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Errorf("metrics the chart's alerts or dashboard select that serve does not serve: %s", strings.Join(missing, ", "))
}

// uncompressed checks that url answers a scraper that accepts gzip without
// compression: serve keeps no compressor's state between scrapes.
func uncompressed(t *testing.T, url string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept-Encoding", "gzip")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ce := resp.Header.Get("Content-Encoding"); resp.StatusCode != http.StatusOK || ce != "" {
		t.Errorf("metrics asked for with Accept-Encoding gzip: HTTP %d, Content-Encoding %q; want 200, uncompressed", resp.StatusCode, ce)
	}
}

// chartMetrics reads files/metrics.txt.
func chartMetrics(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "charts", "singleton-webhook", "files", "metrics.txt"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	if len(out) < 6 {
		t.Fatalf("metrics.txt lists %d metrics: stale or empty", len(out))
	}
	return out
}

// served reports whether families hold name: a family of that name with a
// sample, or a histogram whose _bucket, _sum or _count it is (leaders
// only: leader_election_master_status at 1).
func served(families map[string]*dto.MetricFamily, name string) bool {
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if f, ok := families[strings.TrimSuffix(name, suffix)]; ok && strings.HasSuffix(name, suffix) {
			return f.GetType() == dto.MetricType_HISTOGRAM
		}
	}
	f, ok := families[name]
	if !ok || len(f.GetMetric()) == 0 {
		return false
	}
	if name == "leader_election_master_status" {
		for _, m := range f.GetMetric() {
			if m.GetGauge().GetValue() == 1 && strings.Contains(m.String(), "singleton-webhook.singleton.dev") {
				return true
			}
		}
		return false
	}
	return true
}

func scrapeFamilies(url string) map[string]*dto.MetricFamily {
	resp, err := http.Get(url)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil
	}
	return families
}
