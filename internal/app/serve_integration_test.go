//go:build integration

package app

import (
	"context"
	"fmt"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/singleton-webhook/singleton-webhook/internal/testenv"
)

// TestServeWithTheAPIServer runs the product's `serve` (manager mode,
// certificate files, metrics, probes) against a real API server: the API
// server's admissions go through it, are counted on /metrics, and SIGTERM
// stops it within its grace period.
func TestServeWithTheAPIServer(t *testing.T) {
	env := testenv.Start(t, testenv.Options{})
	s := &served{probes: "127.0.0.1:" + pickPort(t), metrics: "127.0.0.1:" + pickPort(t), stderr: newSyncBuffer()}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s.done = make(chan error, 1)
	go func() {
		s.done <- Serve(ctx, testVersion, []string{"--kubeconfig", env.Kubeconfig,
			"--webhook-port", fmt.Sprint(env.WebhookPort), "--webhook-cert-path", env.CertDir,
			"--health-probe-bind-address", s.probes, "--metrics-bind-address", s.metrics,
			"--graceful-shutdown-timeout", "10s"}, s.stderr)
	}()
	s.waitReady(t)
	waitCtx, waitCancel := context.WithTimeout(ctx, 60*time.Second)
	defer waitCancel()
	if err := testenv.WaitForMutation(waitCtx, env.Config); err != nil {
		t.Fatal(err)
	}

	before := admissionsIn(scrape(t, s.metrics))
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "served", Namespace: "default", Annotations: map[string]string{"singleton": "true"}},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptrTo(int32(4)),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "served"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "served"}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.k8s.io/pause:3.10"}}},
			},
		},
	}
	if err := env.Client.Create(ctx, d); err != nil {
		t.Fatalf("create: %v", err)
	}
	if *d.Spec.Replicas != 1 || d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
		t.Errorf("created with %d replicas, strategy %s; want 1, Recreate", *d.Spec.Replicas, d.Spec.Strategy.Type)
	}
	after := admissionsIn(scrape(t, s.metrics))
	const mutated = "deployments CREATE replicas mutated "
	if got := after[mutated] - before[mutated]; got != 1 {
		t.Errorf("%s moved by %v, want 1\nbefore %v\nafter  %v", mutated, got, before, after)
	}

	cancel() // SIGTERM
	select {
	case err := <-s.done:
		if err != nil {
			t.Errorf("serve returned %v on shutdown", err)
		}
	case <-time.After(60 * time.Second):
		t.Error("serve did not stop within 60s of SIGTERM")
	}
}

func ptrTo[T any](v T) *T { return &v }
