//go:build integration

package ops_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"

	"github.com/singleton-webhook/singleton-webhook/certs"
	"github.com/singleton-webhook/singleton-webhook/internal/app"
	"github.com/singleton-webhook/singleton-webhook/internal/ops"
	"github.com/singleton-webhook/singleton-webhook/internal/testenv"
	"github.com/singleton-webhook/singleton-webhook/patches"
)

var install = ops.Install{Namespace: "singleton-system", WebhookConfiguration: "singleton-webhook", Deployment: "singleton-webhook",
	LeaderLease: "singleton-webhook.singleton.dev", ProbeNamespace: "default", CertMinRemaining: time.Hour}

// findings runs check on the whole cluster and returns "CODE object" per
// finding.
func findings(t *testing.T, env *testenv.Env) string {
	t.Helper()
	r, err := ops.Check(ctxFor(t, time.Minute), env.Clientset, ops.Scope{AllNamespaces: true}, install)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, f := range r.Findings {
		out = append(out, f.Code+" "+f.Object)
		t.Logf("%s %s: %s\n    fix: %s", f.Code, f.Object, f.Cause, f.Fix)
	}
	return strings.Join(out, "; ")
}

// TestCheckOnARealAPIServer makes each fault on a real API server with the
// webhook serving, and wants its finding and nothing else; the healthy
// install between two faults has none.
func TestCheckOnARealAPIServer(t *testing.T) {
	env := testenv.Start(t, testenv.Options{})
	hook := env.StartWebhook(t, testenv.WebhookOptions{})
	ctx := ctxFor(t, 5*time.Minute)
	apps := env.Clientset.AppsV1()
	healthy := func(t *testing.T) {
		t.Helper()
		if got := findings(t, env); got != "" {
			t.Fatalf("healthy install: findings %s", got)
		}
	}
	var stdout, stderr bytes.Buffer
	if err := app.Check(ctx, []string{"--kubeconfig", env.Kubeconfig}, &stdout, &stderr, nil); err != nil {
		t.Fatalf("check on a healthy install: %v\n%s%s", err, stdout.String(), stderr.String())
	}
	t.Logf("check:\n%s", stdout.String())

	for name, tc := range map[string]struct {
		fault func(t *testing.T) (undo func())
		want  string
	}{
		"a nodeName template": {func(t *testing.T) func() {
			// The webhook refuses nodeName in replicas mode now; such a
			// template is one a version before that admitted: gate and
			// label written, created here while no webhook is registered.
			d := singleton("default", "pinned", patches.ModeReplicas)
			d.Spec.Template.Spec.NodeName = "node-1"
			d.Spec.Template.Labels[patches.LabelDeployment] = patches.DeploymentLabelValue(d.Name)
			d.Spec.Template.Spec.SchedulingGates = []corev1.PodSchedulingGate{{Name: patches.GateOneAtATime}}
			mustCreate(t, func() error {
				return env.Clientset.AdmissionregistrationV1().MutatingWebhookConfigurations().Delete(ctx, "singleton-webhook", metav1.DeleteOptions{})
			}, func() error { _, err := apps.Deployments("default").Create(ctx, d, metav1.CreateOptions{}); return err })
			env.InstallWebhookConfiguration(t, env.CABundle)
			return func() { _ = apps.Deployments("default").Delete(ctx, "pinned", metav1.DeleteOptions{}) }
		}, "SW207 deployment/default/pinned"},
		"a Deployment annotated before the install": {func(t *testing.T) func() {
			mustCreate(t, func() error {
				return env.Clientset.AdmissionregistrationV1().MutatingWebhookConfigurations().Delete(ctx, "singleton-webhook", metav1.DeleteOptions{})
			}, func() error {
				_, err := apps.Deployments("default").Create(ctx, singleton("default", "legacy", patches.ModeReplicas), metav1.CreateOptions{})
				return err
			})
			// The drift controller looks at the new Deployment and writes it
			// back as stored: no webhook yet, nothing changes. Only then is
			// the webhook installed.
			time.Sleep(2 * time.Second)
			env.InstallWebhookConfiguration(t, env.CABundle)
			return func() { _ = apps.Deployments("default").Delete(ctx, "legacy", metav1.DeleteOptions{}) }
		}, "SW209 deployment/default/legacy"},
		"a singleton in an opted-out namespace": {func(t *testing.T) func() {
			createNamespace(t, env.Clientset, "opted-out", map[string]string{"singleton.dev/webhook": "disabled"})
			mustCreate(t, func() error {
				_, err := apps.Deployments("opted-out").Create(ctx, singleton("opted-out", "cron", patches.ModeReplicas), metav1.CreateOptions{})
				return err
			})
			// envtest runs no namespace controller: the Deployment goes alone.
			return func() { _ = apps.Deployments("opted-out").Delete(ctx, "cron", metav1.DeleteOptions{}) }
		}, "SW208 deployment/opted-out/cron"},
		"the caBundle replaced with another CA": {func(t *testing.T) func() {
			other, err := certs.NewSelfSigned([]string{"127.0.0.1"})
			if err != nil {
				t.Fatal(err)
			}
			env.InstallWebhookConfiguration(t, other.CAPEM)
			return func() { env.InstallWebhookConfiguration(t, env.CABundle) }
		}, "SW102 mutatingwebhookconfiguration/singleton-webhook"},
		"the webhook stopped": {func(t *testing.T) func() {
			hook.Stop(t)
			return func() { hook.Start(t) }
		}, "SW103 mutatingwebhookconfiguration/singleton-webhook"},
		"an election Lease held by nobody for longer than its duration": {func(t *testing.T) func() {
			mustCreate(t, func() error {
				_, err := apps.Deployments("default").Create(ctx, singleton("default", "leaderless", patches.ModeElection), metav1.CreateOptions{})
				return err
			}, func() error {
				_, err := env.Clientset.CoreV1().Pods("default").Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "leaderless-0",
					Labels: map[string]string{patches.LabelDeployment: "leaderless"}},
					Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.k8s.io/pause:3.10"}}}}, metav1.CreateOptions{})
				return err
			})
			// The election controller creates the Lease; then nobody renews it.
			var l *coordinationv1.Lease
			err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
				var err error
				l, err = env.Clientset.CoordinationV1().Leases("default").Get(ctx, "leaderless", metav1.GetOptions{})
				return err == nil, nil
			})
			if err != nil {
				t.Fatalf("the election controller made no Lease: %v", err)
			}
			old := metav1.NewMicroTime(time.Now().Add(-time.Minute))
			l.Spec.HolderIdentity, l.Spec.RenewTime, l.Spec.LeaseDurationSeconds = ptr.To(""), &old, ptr.To(int32(15))
			mustCreate(t, func() error {
				_, err := env.Clientset.CoordinationV1().Leases("default").Update(ctx, l, metav1.UpdateOptions{})
				return err
			})
			return func() {
				_ = apps.Deployments("default").Delete(ctx, "leaderless", metav1.DeleteOptions{})
				_ = env.Clientset.CoreV1().Pods("default").Delete(ctx, "leaderless-0", metav1.DeleteOptions{GracePeriodSeconds: ptr.To(int64(0))})
			}
		}, "SW203 deployment/default/leaderless"},
	} {
		t.Run(name, func(t *testing.T) {
			undo := tc.fault(t)
			got := findings(t, env)
			undo()
			if got != tc.want {
				t.Errorf("findings %q, want only %q", got, tc.want)
			}
			healthy(t)
		})
	}
}

// TestCheckWaitsForTheWebhook runs check --wait while the webhook comes
// back: it passes once it does.
func TestCheckWaitsForTheWebhook(t *testing.T) {
	env := testenv.Start(t, testenv.Options{})
	hook := env.StartWebhook(t, testenv.WebhookOptions{})
	hook.Stop(t)
	ctx := ctxFor(t, time.Minute)
	var stdout, stderr bytes.Buffer
	err := app.Check(ctx, []string{"--kubeconfig", env.Kubeconfig}, &stdout, &stderr, nil)
	if err == nil || !strings.Contains(stdout.String(), "SW103") {
		t.Fatalf("check with the webhook down: %v\n%s", err, stdout.String())
	}
	go func() {
		time.Sleep(3 * time.Second)
		hook.Start(t)
	}()
	stdout.Reset()
	start := time.Now()
	if err := app.Check(ctx, []string{"--kubeconfig", env.Kubeconfig, "--wait", "40s"}, &stdout, &stderr, nil); err != nil {
		t.Fatalf("check --wait: %v\n%s", err, stdout.String())
	}
	t.Logf("check --wait passed after %s:\n%s", time.Since(start).Round(time.Millisecond), stdout.String())
}
