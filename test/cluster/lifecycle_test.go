//go:build integration

package cluster

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/singleton-webhook/singleton-webhook/internal/testutil"
	"github.com/singleton-webhook/singleton-webhook/patches"
)

// The singleton across the webhook's life: a refused nodeName, an upgrade
// and a rollback, and the release before an uninstall (a Lease-name change:
// leasename_test.go).

// replicaSets counts the ReplicaSets of a Deployment (selector app=name).
func replicaSets(t *testing.T, ns, name string) int {
	t.Helper()
	l, err := cl.Clientset.AppsV1().ReplicaSets(ns).List(ctxFor(t, 30*time.Second), metav1.ListOptions{LabelSelector: "app=" + name})
	if err != nil {
		t.Fatal(err)
	}
	return len(l.Items)
}

// A replicas-mode singleton's update that binds the pod template to a node
// by nodeName is refused with the nodeSelector to write instead, and the
// running Pod is untouched: same Pod, still serving, no new ReplicaSet.
func TestNodeNameIsRefusedAndThePodUntouched(t *testing.T) {
	ns := newNamespace(t)
	ctx := ctxFor(t, 2*time.Minute)
	tr := track(t, cl.Clientset, ns, "app=pinned")
	if _, err := cl.Clientset.AppsV1().Deployments(ns).Create(ctx, singleton(ns, "pinned"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pod := onlyPod(t, tr)
	_, stderr, err := tryRun(t, "-n", ns, "patch", "deploy/pinned", "--type=merge", "-p", `{"spec":{"template":{"spec":{"nodeName":"node-1"}}}}`)
	if err == nil || !strings.Contains(stderr, "nodeSelector: {kubernetes.io/hostname: node-1}") {
		t.Fatalf("nodeName accepted or refused without the fix (err %v): %s", err, stderr)
	}
	time.Sleep(3 * time.Second)
	if got := replicaSets(t, ns, "pinned"); got != 1 {
		t.Errorf("%d ReplicaSets after the refused update, want 1", got)
	}
	for _, p := range tr.snapshot() {
		if p.UID != pod.UID || p.DeletionTimestamp != nil || !ready(p) {
			t.Errorf("pod %s (deleting %v, ready %t) after the refused update; want only %s, serving", p.Name, p.DeletionTimestamp, ready(p), pod.Name)
		}
	}
}

func countServing(ps []*corev1.Pod) int {
	n := 0
	for _, p := range ps {
		if p.DeletionTimestamp == nil && ready(p) {
			n++
		}
	}
	return n
}

// restartStamped replaces the running webhook by binary and returns when
// it mutates again and its drift controller has looked at every singleton
// of the cluster once.
func restartStamped(t *testing.T, binary string) {
	t.Helper()
	hook.Stop()
	h, err := cl.StartWebhook(context.Background(), binary)
	if err != nil {
		t.Fatalf("start %s: %v", binary, err)
	}
	hook = h
	all, err := cl.Clientset.AppsV1().Deployments("").List(ctxFor(t, 30*time.Second), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, d := range all.Items {
		if _, ok := d.Annotations[patches.AnnotationSingleton]; ok {
			n++
		}
	}
	waitDriftPass(t, n)
}

// waitDriftPass waits until the running webhook's drift controller has
// reconciled at least n Deployments: its first pass over the singletons,
// the moment an upgrade would roll them.
func waitDriftPass(t *testing.T, n int) {
	t.Helper()
	const series = `controller_runtime_reconcile_total{controller="singleton-drift",result="success"} `
	waitUntil(t, time.Minute, "the drift controller's first pass", func() bool {
		_, body := testutil.Scrape(context.Background(), t, hook.MetricsURL, "")
		for _, l := range strings.Split(body, "\n") {
			if v, ok := strings.CutPrefix(l, series); ok {
				f, err := strconv.ParseFloat(v, 64)
				return err == nil && f >= float64(n)
			}
		}
		return n == 0
	})
}

// An upgrade rolls nothing, and neither does the rollback: serve stamped
// v1.4.0 admits a replicas-mode and an election-mode singleton; serve
// stamped v1.5.0 (the same code) replaces it: no new ReplicaSet after its
// drift controller's first pass and a re-apply of the unchanged manifest;
// then back to v1.4.0: the unchanged manifest is accepted, and still no
// new ReplicaSet.
func TestUpgradeAndRollbackRollNothing(t *testing.T) {
	binA, binB := testutil.ProductStamped(t, "v1.4.0"), testutil.ProductStamped(t, "v1.5.0")
	stopWebhook(t)
	t.Cleanup(func() { hook.Stop() }) // the stamped one, before stopWebhook's restart
	ns := newNamespace(t)
	manifest := testutil.SingletonsManifest(t, ns, grace, false)
	restartStamped(t, binA)
	run(t, "apply", "-f", manifest)
	solo, duo := track(t, cl.Clientset, ns, "app=solo"), track(t, cl.Clientset, ns, "app=duo")
	onlyPod(t, solo)
	duo.waitFor(time.Minute, "2 Pods serving", func(ps []*corev1.Pod) bool { return countServing(ps) == 2 })
	injected := func() string {
		d, err := cl.Clientset.AppsV1().Deployments(ns).Get(context.Background(), "duo", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return d.Spec.Template.Annotations[patches.AnnotationInjected]
	}
	if v := injected(); v != "v1.4.0" {
		t.Fatalf("the election sidecar was injected by %q, want v1.4.0", v)
	}
	generations := map[string]int64{}
	for _, name := range []string{"solo", "duo"} {
		d, err := cl.Clientset.AppsV1().Deployments(ns).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		generations[name] = d.Generation
	}
	// A new ReplicaSet is a rollout; so is a changed generation (a rollback
	// to a template seen before reuses its ReplicaSet).
	check := func(stage string) {
		t.Helper()
		for _, name := range []string{"solo", "duo"} {
			if n := replicaSets(t, ns, name); n != 1 {
				t.Errorf("%s: %s has %d ReplicaSets, want 1 (no rollout)", stage, name, n)
			}
			d, err := cl.Clientset.AppsV1().Deployments(ns).Get(context.Background(), name, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if d.Generation != generations[name] {
				t.Errorf("%s: %s is at generation %d, want %d (its spec unchanged)", stage, name, d.Generation, generations[name])
			}
		}
		if v := injected(); v != "v1.4.0" {
			t.Errorf("%s: the sidecar is now of %q, want v1.4.0 kept", stage, v)
		}
	}
	for _, step := range []struct{ stage, bin string }{{"upgrade to v1.5.0", binB}, {"rollback to v1.4.0", binA}} {
		start := time.Now()
		restartStamped(t, step.bin)
		// The drift controller's first pass is over; a few seconds more for
		// a rollout it would have started to show as a ReplicaSet.
		time.Sleep(5 * time.Second)
		check(step.stage + ", after the drift controller's first pass")
		if _, stderr, err := tryRun(t, "apply", "-f", manifest); err != nil {
			t.Errorf("%s: the unchanged manifest was refused: %v\n%s", step.stage, err, stderr)
		}
		time.Sleep(3 * time.Second)
		check(step.stage + ", after a re-apply of the unchanged manifest")
		t.Logf("%s: ReplicaSets and generations checked over the %s after the new webhook started", step.stage, time.Since(start).Round(time.Second))
	}
}
