package app

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/singleton-webhook/singleton-webhook/webhook"
)

func TestServeMetricsScrape(t *testing.T) {
	s := startServed(t)
	c := s.tlsClient(&tls.Config{})
	post := func(path, body string) {
		t.Helper()
		resp, err := c.Post("https://"+s.webhook+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatalf("POST: %v", err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	// Other servers of this process count in the same registry: compare
	// the counts before and after.
	before := scrape(t, s.metrics)
	for range 2 {
		post(webhook.DeploymentPath, serveReviewBody(t, "CREATE", singletonObject))
	}
	post(webhook.DeploymentPath, serveReviewBody(t, "UPDATE", `{"metadata":{"annotations":{"singleton":"maybe"}}}`))
	post(webhook.DeploymentPath, serveReviewBody(t, "CREATE", `{"metadata":{}}`))
	post(webhook.DeploymentPath, "{")
	post(webhook.ScalePath, `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u-scale",`+
		`"kind":{"group":"autoscaling","version":"v1","kind":"Scale"},`+
		`"resource":{"group":"apps","version":"v1","resource":"deployments"},"subResource":"scale",`+
		`"name":"app","namespace":"default","operation":"UPDATE","object":{"spec":{"replicas":3}}}}`)

	families := scrape(t, s.metrics)
	got := map[string]float64{}
	was := admissionsIn(before)
	for k, v := range admissionsIn(families) {
		if v-was[k] != 0 {
			got[k] = v - was[k]
		}
	}
	want := map[string]float64{
		"deployments CREATE replicas mutated ":                     2,
		"deployments UPDATE none denied ":                          1,
		"deployments CREATE none skipped not-singleton":            1,
		"deployments unknown none errored malformed-review":        1,
		"deployments/scale UPDATE none skipped parent-not-checked": 1,
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("admission counters\n got %v\nwant %v", got, want)
	}
	// Latencies are controller-runtime's, by path.
	observed := latencies(families, webhook.DeploymentPath) - latencies(before, webhook.DeploymentPath)
	if observed != 5 {
		t.Errorf("%d latencies observed at %s, want 5", observed, webhook.DeploymentPath)
	}
	if observed := latencies(families, webhook.ScalePath) - latencies(before, webhook.ScalePath); observed != 1 {
		t.Errorf("%d latencies observed at %s, want 1", observed, webhook.ScalePath)
	}
	if _, ok := families["controller_runtime_webhook_requests_total"]; !ok {
		t.Error("controller-runtime's webhook request metrics are not served alongside")
	}
}

// latencies returns the number of requests webhook.LatencyMetric observed
// at a webhook path.
func latencies(families map[string]*dto.MetricFamily, path string) uint64 {
	for _, m := range families[webhook.LatencyMetric].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "webhook" && l.GetValue() == path {
				return m.GetHistogram().GetSampleCount()
			}
		}
	}
	return 0
}

// scrape returns the metric families served at addr/metrics.
func scrape(t *testing.T, addr string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse metrics: %v", err)
	}
	return families
}

// admissionsIn returns the admission counters of scraped families, keyed by
// "resource operation mode outcome reason".
func admissionsIn(families map[string]*dto.MetricFamily) map[string]float64 {
	got := map[string]float64{}
	for _, m := range families[webhook.AdmissionsMetric].GetMetric() {
		l := map[string]string{}
		for _, p := range m.GetLabel() {
			l[p.GetName()] = p.GetValue()
		}
		got[fmt.Sprintf("%s %s %s %s %s", l["resource"], l["operation"], l["mode"], l["outcome"], l["reason"])] = m.GetCounter().GetValue()
	}
	return got
}
