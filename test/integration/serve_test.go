//go:build integration

package integration

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"

	"github.com/singleton-webhook/singleton-webhook/internal/app"
	"github.com/singleton-webhook/singleton-webhook/internal/testenv"
	"github.com/singleton-webhook/singleton-webhook/internal/testutil"
	"github.com/singleton-webhook/singleton-webhook/webhook"
)

// metricsReader is the ClusterRole of manifests/rbac.yaml that may scrape.
const metricsReader = "singleton-webhook-metrics-reader"

// TestServeWithTheAPIServer runs the product's `serve` (manager mode,
// certificate files, metrics behind authentication, probes) against a real
// API server: the API server's admissions go through it, /metrics answers
// 401 without a token, 403 to a ServiceAccount without the metrics-reader
// ClusterRole, and counts the admissions for one bound to it; SIGTERM stops
// it within its grace period.
func TestServeWithTheAPIServer(t *testing.T) {
	env := testenv.Start(t, testenv.Options{})
	probes, metrics := testutil.FreeAddr(t), testutil.FreeAddr(t)
	stderr := &testutil.SyncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- app.Serve(ctx, testutil.TestVersion, []string{"--kubeconfig", env.Kubeconfig,
			"--webhook-port", fmt.Sprint(env.WebhookPort), "--webhook-cert-path", env.CertDir,
			"--health-probe-bind-address", probes, "--metrics-bind-address", metrics,
			"--graceful-shutdown-timeout", "10s"}, stderr)
	}()
	waitCtx, waitCancel := context.WithTimeout(ctx, 60*time.Second)
	defer waitCancel()
	waitServing(waitCtx, t, "http://"+probes+"/readyz", done, stderr)
	if err := testenv.WaitForMutation(waitCtx, env.Config); err != nil {
		t.Fatal(err)
	}

	url := "https://" + metrics + "/metrics"
	reader := scraperToken(t, env, "prometheus", metricsReader)
	stranger := scraperToken(t, env, "stranger", "")
	if code, _ := testutil.Scrape(ctxFor(t), t, url, ""); code != http.StatusUnauthorized {
		t.Errorf("scrape without a token: HTTP %d, want 401", code)
	}
	if code, _ := testutil.Scrape(ctxFor(t), t, url, stranger); code != http.StatusForbidden {
		t.Errorf("scrape by a ServiceAccount without %s: HTTP %d, want 403", metricsReader, code)
	}
	before := admissionCounts(t, url, reader)
	d := singletonDeployment("served", 4)
	if err := env.Client.Create(ctx, d); err != nil {
		t.Fatalf("create: %v", err)
	}
	if *d.Spec.Replicas != 1 || d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
		t.Errorf("created with %d replicas, strategy %s; want 1, Recreate", *d.Spec.Replicas, d.Spec.Strategy.Type)
	}
	after := admissionCounts(t, url, reader)
	const mutated = "deployments CREATE replicas mutated "
	if got := after[mutated] - before[mutated]; got != 1 {
		t.Errorf("%s moved by %v, want 1\nbefore %v\nafter  %v", mutated, got, before, after)
	}

	cancel() // SIGTERM
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve returned %v on shutdown", err)
		}
	case <-time.After(60 * time.Second):
		t.Error("serve did not stop within 60s of SIGTERM")
	}
}

// singletonDeployment is a singleton Deployment in default asking for
// replicas.
func singletonDeployment(name string, replicas int32) *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", Annotations: map[string]string{"singleton": "true"}},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.k8s.io/pause:3.10"}}},
			},
		},
	}
}

// waitServing polls a readiness URL until it answers 200, failing the test
// if serve returns first.
func waitServing(ctx context.Context, t *testing.T, url string, done chan error, logs *testutil.SyncBuffer) {
	t.Helper()
	err := wait.PollUntilContextCancel(ctx, 50*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		select {
		case err := <-done:
			done <- err
			return false, fmt.Errorf("serve stopped: %v", err)
		default:
		}
		resp, err := http.Get(url)
		if err != nil {
			return false, nil
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
	if err != nil {
		t.Fatalf("serve not ready at %s: %v\n%s", url, err, logs.String())
	}
}

// scraperToken creates a ServiceAccount in default, bound to the ClusterRole
// of manifests/rbac.yaml named role unless role is empty, and returns a
// token of it.
func scraperToken(t *testing.T, env *testenv.Env, name, role string) string {
	t.Helper()
	if role != "" {
		if _, stderr, err := env.Kubectl(t, "", "apply", "-f", filepath.Join(env.Root, "manifests", "namespace.yaml"),
			"-f", filepath.Join(env.Root, "manifests", "rbac.yaml")); err != nil {
			t.Fatalf("apply manifests/rbac.yaml: %v: %s", err, stderr)
		}
	}
	return testutil.ScraperToken(ctxFor(t), t, env.Clientset, "default", name, role)
}

// admissionCounts scrapes with token and returns the admission counters,
// keyed by "resource operation mode outcome reason".
func admissionCounts(t *testing.T, url, token string) map[string]float64 {
	t.Helper()
	code, body := testutil.Scrape(ctxFor(t), t, url, token)
	if code != http.StatusOK {
		t.Fatalf("scrape by a %s ServiceAccount: HTTP %d: %s", metricsReader, code, body)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parse metrics: %v", err)
	}
	got := map[string]float64{}
	for _, m := range families[webhook.AdmissionsMetric].GetMetric() {
		got[labelKey(m)] = m.GetCounter().GetValue()
	}
	return got
}

func labelKey(m *dto.Metric) string {
	l := map[string]string{}
	for _, p := range m.GetLabel() {
		l[p.GetName()] = p.GetValue()
	}
	return fmt.Sprintf("%s %s %s %s %s", l["resource"], l["operation"], l["mode"], l["outcome"], l["reason"])
}
