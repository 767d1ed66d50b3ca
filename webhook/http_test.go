package webhook

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	"github.com/prometheus/client_golang/prometheus"
	admissionv1 "k8s.io/api/admission/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/singleton-webhook/singleton-webhook/patches"
)

// httpDo sends one request to h and returns what it answered.
func httpDo(h http.Handler, method, contentType string, body io.Reader) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, DeploymentPath, body)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// freshMetrics returns Metrics registered in a registry of their own.
func freshMetrics(t testing.TB) (*Metrics, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatalf("NewMetrics: %v", err)
	}
	return m, reg
}

// admissionCounts returns the non-zero series of AdmissionsMetric, keyed by
// "resource operation mode outcome reason".
func admissionCounts(t testing.TB, g prometheus.Gatherer) map[string]float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatalf("gather metrics: %v", err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != AdmissionsMetric {
			continue
		}
		for _, m := range mf.GetMetric() {
			if m.GetCounter().GetValue() == 0 {
				continue
			}
			l := map[string]string{}
			for _, lp := range m.GetLabel() {
				l[lp.GetName()] = lp.GetValue()
			}
			key := strings.Join([]string{l["resource"], l["operation"], l["mode"], l["outcome"], l["reason"]}, " ")
			got[key] = m.GetCounter().GetValue()
		}
	}
	return got
}

// formatCounts renders counts sorted, for failure messages.
func formatCounts(c map[string]float64) string {
	lines := make([]string, 0, len(c))
	for k, v := range c {
		lines = append(lines, fmt.Sprintf("%s = %v", k, v))
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// handlerFunc adapts a function to admission.Handler.
type handlerFunc func(context.Context, admission.Request) admission.Response

func (f handlerFunc) Handle(ctx context.Context, req admission.Request) admission.Response {
	return f(ctx, req)
}

func TestHTTPHandlerFinishesReviewsWhenTheServerCancels(t *testing.T) {
	var sawErr error
	var sawDeadline time.Duration
	h := NewHTTPHandler(ResourceDeployments, handlerFunc(func(ctx context.Context, _ admission.Request) admission.Response {
		sawErr = ctx.Err()
		if d, ok := ctx.Deadline(); ok {
			sawDeadline = time.Until(d)
		}
		return admission.Allowed("")
	}), nil)
	body := reviewBytes(t, deploymentRequest(admissionv1.Create, []byte(`{}`)))
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // as http.Server.Shutdown does to its requests' base context
	req := httptest.NewRequestWithContext(ctx, http.MethodPost, DeploymentPath, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("HTTP %d: %s", rec.Code, rec.Body)
	}
	if sawErr != nil {
		t.Errorf("the handler saw a done context (%v); it must finish the review", sawErr)
	}
	if sawDeadline <= 0 || sawDeadline > RequestTimeout {
		t.Errorf("the handler's deadline is %v away; want within (0, %v]", sawDeadline, RequestTimeout)
	}
	if !decodeReviewResponse(t, rec.Body.Bytes()).Allowed {
		t.Errorf("not allowed: %s", rec.Body)
	}
}

func TestHTTPHandlerRecoversPanics(t *testing.T) {
	m, reg := freshMetrics(t)
	h := NewHTTPHandler(ResourceDeployments, handlerFunc(func(context.Context, admission.Request) admission.Response {
		panic("boom")
	}), m)
	req := deploymentRequest(admissionv1.Create, []byte(`{}`))
	rec := httpDo(h, http.MethodPost, "application/json", bytes.NewReader(reviewBytes(t, req)))
	if rec.Code != http.StatusOK {
		t.Fatalf("HTTP %d: %s", rec.Code, rec.Body)
	}
	resp := decodeReviewResponse(t, rec.Body.Bytes())
	if resp.Allowed || resp.UID != req.UID || resp.Result == nil || resp.Result.Code != http.StatusInternalServerError ||
		resp.Result.Message != "panic: boom [recovered]" {
		t.Errorf("answer %s; want a denial with code 500, the UID echoed and the panic named", rec.Body)
	}
	want := map[string]float64{"deployments CREATE none errored internal": 1}
	if got := admissionCounts(t, reg); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("counters:\n%s\nwant:\n%s", formatCounts(got), formatCounts(want))
	}
}

func TestHTTPHandlerAcceptsJSONWithParameters(t *testing.T) {
	h := NewHTTPHandler(ResourceDeployments, &Deployments{}, nil)
	body := reviewBytes(t, deploymentRequest(admissionv1.Create, []byte(`{"metadata":{"name":"app"}}`)))
	rec := httpDo(h, http.MethodPost, "application/json; charset=utf-8", bytes.NewReader(body))
	if rec.Code != http.StatusOK {
		t.Fatalf("HTTP %d: %s", rec.Code, rec.Body)
	}
	if got := rec.Header().Get("Content-Type"); got != "application/json" {
		t.Errorf("answer Content-Type %q, want application/json", got)
	}
}

// slowReader yields its data, then blocks until the context is done.
type slowReader struct {
	data []byte
	ctx  context.Context
}

func (r *slowReader) Read(p []byte) (int, error) {
	if len(r.data) > 0 {
		n := copy(p, r.data)
		r.data = r.data[n:]
		return n, nil
	}
	<-r.ctx.Done()
	return 0, r.ctx.Err()
}

func TestHTTPHandlerTimesOutSlowBodies(t *testing.T) {
	// A real server: the read deadline needs a connection.
	h := NewHTTPHandler(ResourceDeployments, &Deployments{}, nil)
	h.Timeout = 200 * time.Millisecond
	srv := httptest.NewServer(h)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	body := &slowReader{data: []byte(`{"apiVersion":`), ctx: ctx}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+DeploymentPath, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("request: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusRequestTimeout || strings.TrimSpace(string(b)) != "request body not received within 200ms" {
		t.Errorf("HTTP %d %q; want 408 naming the timeout", resp.StatusCode, b)
	}
}

func TestReviewAnswersLikeTheServer(t *testing.T) {
	raw := toJSON(t, `
apiVersion: apps/v1
kind: Deployment
metadata: {name: app, namespace: default, annotations: {singleton: "yes"}}
spec: {replicas: 2}
`)
	body := reviewBytes(t, deploymentRequest(admissionv1.Create, raw))
	offline, err := Review(context.Background(), NewHandlers(patches.Policy{}, nil), body)
	if err != nil {
		t.Fatalf("Review: %v", err)
	}
	h := NewHandlers(patches.Policy{}, nil)
	rec := httpDo(h.routes()[DeploymentPath], http.MethodPost, "application/json", bytes.NewReader(body))
	if !bytes.Equal(offline, rec.Body.Bytes()) {
		t.Errorf("offline review differs from the server:\n%s\n%s", offline, rec.Body)
	}
	resp := decodeReviewResponse(t, offline)
	if resp.Allowed || resp.Result.Code != http.StatusForbidden {
		t.Errorf("answer %s; want a denial", offline)
	}
}

// logLines captures log lines as "V=level msg key=value ...".
type logLines struct{ lines []string }

func (l *logLines) logger() logr.Logger {
	return funcr.New(func(prefix, args string) { l.lines = append(l.lines, prefix+" "+args) },
		funcr.Options{Verbosity: 1, LogInfoLevel: ptr.To("v")})
}

func TestHTTPHandlerLogsTheRequestNotTheObject(t *testing.T) {
	const secret = "s3cr3t-token-value"
	object := []byte(`{"metadata":{"name":"app","namespace":"default","annotations":{"singleton":"maybe"}},` +
		`"spec":{"template":{"spec":{"containers":[{"name":"c","env":[{"name":"TOKEN","value":"` + secret + `"}]}]}}}}`)
	tests := map[string]struct {
		object []byte
		level  string
	}{
		"a denial is logged at the default level": {object: object, level: `"v"=0`},
		"a mutation is logged at V(1)": {
			object: bytes.Replace(object, []byte("maybe"), []byte("true"), 1),
			level:  `"v"=1`,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var l logLines
			h := NewHTTPHandler(ResourceDeployments, &Deployments{}, nil)
			h.log = l.logger()
			rec := httpDo(h, http.MethodPost, "application/json",
				bytes.NewReader(reviewBytes(t, deploymentRequest(admissionv1.Update, tc.object))))
			if rec.Code != http.StatusOK || len(l.lines) != 1 {
				t.Fatalf("HTTP %d, log lines %q", rec.Code, l.lines)
			}
			line := l.lines[0]
			for _, want := range []string{tc.level, `"requestID"="0c5e6a3e-2f0d-4a39-9b1f-1d1e2c3b4a50"`,
				`"object"={"name"="app" "namespace"="default"}`, `"kind"="Deployment"`, `"operation"="UPDATE"`} {
				if !strings.Contains(line, want) {
					t.Errorf("log line lacks %s: %s", want, line)
				}
			}
			if strings.Contains(line, secret) || strings.Contains(line, "TOKEN") || strings.Contains(line, `"spec"`) {
				t.Errorf("log line carries the object: %s", line)
			}
		})
	}
}
