//go:build integration

package integration

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/singleton-webhook/singleton-webhook/internal/app"
	"github.com/singleton-webhook/singleton-webhook/internal/testenv"
	"github.com/singleton-webhook/singleton-webhook/patches"
)

// The lifecycle rules through the real API server, which sends the stored
// object with every UPDATE: a Lease-name change of a live election, and the
// release marker honoured by the webhook and its drift controller while
// they are still installed. (No Deployment controller runs here: the
// cluster tier shows the Pods.)
func TestLifecycleThroughTheAPIServer(t *testing.T) {
	t.Parallel() // a control plane of its own
	env := testenv.Start(t, testenv.Options{})
	env.StartWebhook(t, testenv.WebhookOptions{})
	t.Run("a Lease-name change of a live election is refused, then allowed once no Pod is left", func(t *testing.T) { leaseChange(t, env) })
	t.Run("a released singleton stays released while the webhook is installed", func(t *testing.T) { releasedStays(t, env) })
}

func leaseChange(t *testing.T, env *testenv.Env) {
	ns := newNamespace(t, env)
	deps := env.Clientset.AppsV1().Deployments(ns)
	d := deployment(ns, "elected", 2, map[string]string{patches.AnnotationSingleton: "true", patches.AnnotationMode: "election"})
	if _, err := deps.Create(ctxFor(t), d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	rename := func() error {
		cur, err := deps.Get(ctxFor(t), "elected", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		cur.Annotations[patches.AnnotationLeaseName] = "moved"
		_, err = deps.Update(ctxFor(t), cur, metav1.UpdateOptions{})
		return err
	}
	err := rename()
	if err == nil || !strings.Contains(err.Error(), `the effective Lease would change from "elected" to "moved"`) ||
		!strings.Contains(err.Error(), "kubectl scale deployment/elected --replicas=0") {
		t.Fatalf("renaming the Lease of a live election: %v; want a denial with the safe procedure", err)
	}

	cur, err := deps.Get(ctxFor(t), "elected", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cur.Spec.Replicas = ptr.To[int32](0)
	if cur, err = deps.Update(ctxFor(t), cur, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := rename(); err == nil || !strings.Contains(err.Error(), "has observed generation") {
		t.Fatalf("renaming before the scale to 0 was observed: %v; want a denial", err)
	}
	// What the Deployment controller writes once the Pods are gone.
	cur.Status.ObservedGeneration, cur.Status.Replicas = cur.Generation, 0
	if _, err := deps.UpdateStatus(ctxFor(t), cur, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := rename(); err != nil {
		t.Fatalf("renaming with no Pod left: %v", err)
	}
}

func releasedStays(t *testing.T, env *testenv.Env) {
	ns := newNamespace(t, env)
	deps := env.Clientset.AppsV1().Deployments(ns)
	if _, err := deps.Create(ctxFor(t), singleton(ns, "worker", 3), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	err := app.Release(context.Background(), []string{"-n", ns, "--timeout=2s", "--kubeconfig", env.Kubeconfig}, &out, &errOut)
	t.Logf("release: %v\n%s%s", err, out.String(), errOut.String())
	// No Deployment controller rolls it out here: release says so, and
	// fails, after the Deployment itself is released.
	if err == nil || !strings.Contains(out.String(), ns+"/worker: could not release: released, but its rollout did not finish") {
		t.Errorf("release without a Deployment controller: %v; want the rollout reported unfinished", err)
	}
	got, err := deps.Get(ctxFor(t), "worker", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if patches.HasGate(got) || !patches.Released(got.Annotations) {
		t.Fatalf("after release: gate %t, released %t", patches.HasGate(got), patches.Released(got.Annotations))
	}
	// A write through the webhook, and its drift controller's look at the
	// change, leave it released: no gate put back, no pin.
	got.Spec.Replicas = ptr.To[int32](3)
	got.Spec.Template.Spec.Containers[0].Image = "registry.k8s.io/pause:3.11"
	if _, err := deps.Update(ctxFor(t), got, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	got, err = deps.Get(ctxFor(t), "worker", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if patches.HasGate(got) || *got.Spec.Replicas != 3 {
		t.Errorf("a released singleton was enforced again: gate %t, replicas %d", patches.HasGate(got), *got.Spec.Replicas)
	}
}
