//go:build integration

package integration

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/singleton-webhook/singleton-webhook/internal/testenv"
)

// repinWithin is how soon after the webhook comes back a singleton scaled
// during the outage must be pinned again.
const repinWithin = 10 * time.Second

// TestWebhookOutage stops the webhook process and checks what the webhook
// configuration promises: nobody but singleton Deployments notices, and the
// drift controller heals what slipped through once the webhook is back.
func TestWebhookOutage(t *testing.T) {
	t.Parallel() // each test runs a control plane of its own
	env := testenv.Start(t, testenv.Options{})
	hook := env.StartWebhook(t, testenv.WebhookOptions{})
	ns := newNamespace(t, env)
	createDeployment(t, env, singleton(ns, "worker", 1))
	createDeployment(t, env, deployment(ns, "web", 1, nil))
	hook.Stop(t)

	t.Run("ordinary deployments are still created", func(t *testing.T) {
		createDeployment(t, env, deployment(ns, "web-during-outage", 3, nil))
		if got := getDeployment(t, env, ns, "web-during-outage"); replicasOf(got) != "3" {
			t.Errorf("replicas %s, want 3", replicasOf(got))
		}
	})

	t.Run("singleton deployments are refused, naming the webhook", func(t *testing.T) {
		_, stderr, err := env.Kubectl(t, manifest(t, singleton(ns, "worker-during-outage", 3)), "apply", "-f", "-")
		if err == nil {
			t.Fatal("kubectl apply of a singleton succeeded with the webhook down; want a refusal")
		}
		if !strings.Contains(stderr, `failed calling webhook "deployments.singleton.dev"`) {
			t.Errorf("kubectl stderr %q does not name the webhook", stderr)
		}
		_, err = env.Clientset.AppsV1().Deployments(ns).Get(ctxFor(t), "worker-during-outage", metav1.GetOptions{})
		if err == nil {
			t.Error("the refused singleton was stored")
		}
	})

	t.Run("scaling ordinary deployments still works", func(t *testing.T) {
		if _, stderr, err := env.Kubectl(t, "", "scale", "-n", ns, "deploy/web", "--replicas=4"); err != nil {
			t.Fatalf("kubectl scale: %v\n%s", err, stderr)
		}
		if got := getDeployment(t, env, ns, "web"); replicasOf(got) != "4" {
			t.Errorf("replicas %s, want 4", replicasOf(got))
		}
	})

	t.Run("a singleton scaled during the outage is re-pinned when the webhook is back", func(t *testing.T) {
		if _, stderr, err := env.Kubectl(t, "", "scale", "-n", ns, "deploy/worker", "--replicas=3"); err != nil {
			t.Fatalf("kubectl scale: %v\n%s", err, stderr)
		}
		if got := getDeployment(t, env, ns, "worker"); replicasOf(got) != "3" {
			t.Fatalf("replicas %s after scaling with the webhook down, want 3 (failurePolicy Ignore)", replicasOf(got))
		}
		start := time.Now()
		hook.Start(t)
		took := eventually(t, repinWithin, "re-pin after the webhook restarted", func() (bool, string) {
			got := getDeployment(t, env, ns, "worker")
			return replicasOf(got) == "1", "replicas " + replicasOf(got)
		})
		t.Logf("re-pinned %s after the restart began (%s after it was ready)", time.Since(start).Round(time.Millisecond), took.Round(time.Millisecond))
		assertPinned(t, getDeployment(t, env, ns, "worker"))
	})

	t.Run("ordinary deployments scaled during the outage are left alone", func(t *testing.T) {
		if got := getDeployment(t, env, ns, "web"); replicasOf(got) != "4" {
			t.Errorf("replicas %s, want the 4 it was scaled to", replicasOf(got))
		}
	})
}
