package webhook

import (
	"bytes"
	"fmt"
	"net/http"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	admissionv1 "k8s.io/api/admission/v1"

	"github.com/singleton-webhook/singleton-webhook/patches"
)

func TestMetricsCountAKnownSequence(t *testing.T) {
	m, reg := freshMetrics(t)
	h := NewHandlers(patches.Policy{}, hostileParents)
	h.Metrics = m
	routes := h.routes()
	singleton := hostileDeployment("", hostileSpec)
	post := func(path string, body []byte) {
		t.Helper()
		rec := httpDo(routes[path], http.MethodPost, "application/json", bytes.NewReader(body))
		if rec.Code != http.StatusOK {
			t.Fatalf("HTTP %d: %s", rec.Code, rec.Body)
		}
	}
	for range 3 {
		post(DeploymentPath, hostileReview(t, admissionv1.Create, singleton, nil))
	}
	already := []byte(`{"metadata":{"name":"app","labels":{"singleton.dev/mode":"replicas"},"annotations":{"singleton":"true","singleton.dev/original-replicas":"1",` +
		`"singleton.dev/original-strategy":"Recreate"}},"spec":{"replicas":1,"strategy":{"type":"Recreate"},` +
		`"template":{"metadata":{"labels":{"singleton.dev/deployment":"app"}},"spec":{"schedulingGates":[{"name":"singleton.dev/one-at-a-time"}]}}}}`)
	post(DeploymentPath, hostileReview(t, admissionv1.Update, already, nil))
	post(DeploymentPath, hostileReview(t, admissionv1.Update, []byte(`{"metadata":{"annotations":{"singleton":"maybe"}}}`), nil))
	post(DeploymentPath, hostileReview(t, admissionv1.Create, []byte(`{"metadata":{}}`), nil))
	post(DeploymentPath, hostileReview(t, admissionv1.Create, []byte(`{"metadata":{}}`), nil))
	post(DeploymentPath, hostileReview(t, admissionv1.Delete, nil, nil))
	post(ScalePath, hostileScale(t, "web", `{"spec":{"replicas":4}}`))
	post(ScalePath, hostileScale(t, "web", `{"spec":{"replicas":1}}`))
	post(ScalePath, hostileScale(t, "other", `{"spec":{"replicas":4}}`))
	if rec := httpDo(routes[DeploymentPath], http.MethodGet, "", nil); rec.Code != http.StatusMethodNotAllowed {
		t.Fatalf("GET: HTTP %d", rec.Code)
	}

	want := map[string]float64{
		"deployments CREATE replicas mutated ":                       3,
		"deployments UPDATE replicas unchanged ":                     1,
		"deployments UPDATE none denied ":                            1,
		"deployments CREATE none skipped not-singleton":              2,
		"deployments DELETE none skipped operation":                  1,
		"deployments unknown none errored method":                    1,
		"deployments/scale UPDATE replicas mutated ":                 1,
		"deployments/scale UPDATE none skipped at-most-one-replica":  1,
		"deployments/scale UPDATE none skipped parent-lookup-failed": 1,
	}
	if got := admissionCounts(t, reg); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("counters:\n%s\nwant:\n%s", formatCounts(got), formatCounts(want))
	}
}

func TestMetricsStartAtZeroForTheUsualSeries(t *testing.T) {
	_, reg := freshMetrics(t)
	n, err := testutil.GatherAndCount(reg, AdmissionsMetric)
	if err != nil {
		t.Fatal(err)
	}
	// CREATE and UPDATE, each mutated, unchanged, denied, skipped not-singleton.
	if n != 8 {
		t.Errorf("%d admission series exported before any request, want 8 at 0", n)
	}
	if got := admissionCounts(t, reg); len(got) != 0 {
		t.Errorf("non-zero counters before any request:\n%s", formatCounts(got))
	}
}

func TestMetricsShareCollectorsWithinARegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	a, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewMetrics(reg)
	if err != nil {
		t.Fatalf("second NewMetrics on the same registry: %v", err)
	}
	a.count(ResourceDeployments, admissionv1.Create, outcome{kind: OutcomeMutated, mode: patches.ModeReplicas})
	b.count(ResourceDeployments, admissionv1.Create, outcome{kind: OutcomeMutated, mode: patches.ModeReplicas})
	want := map[string]float64{"deployments CREATE replicas mutated ": 2}
	if got := admissionCounts(t, reg); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("counters:\n%s\nwant:\n%s", formatCounts(got), formatCounts(want))
	}
}

func TestMetricsRefuseAClashingCollector(t *testing.T) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewCounter(prometheus.CounterOpts{Name: AdmissionsMetric, Help: "other"}))
	if _, err := NewMetrics(reg); err == nil {
		t.Error("NewMetrics accepted a registry holding another collector of the same name")
	}
}

func TestMetricsCountWithoutAllocating(t *testing.T) {
	m, _ := freshMetrics(t)
	o := outcome{kind: OutcomeMutated, mode: patches.ModeReplicas}
	m.count(ResourceDeployments, admissionv1.Update, o)
	if n := testing.AllocsPerRun(100, func() { m.count(ResourceDeployments, admissionv1.Update, o) }); n != 0 {
		t.Errorf("counting allocates %v times per review, want 0", n)
	}
	var nilMetrics *Metrics
	nilMetrics.count(ResourceDeployments, admissionv1.Update, o) // must not panic
}

func TestMetricsPassPromlint(t *testing.T) {
	_, reg := freshMetrics(t)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	problems, err := promlint.NewWithMetricFamilies(mfs).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
}
