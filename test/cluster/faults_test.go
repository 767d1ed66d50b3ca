//go:build integration

package cluster

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// workload is a kind of one-instance workload the fault table compares.
type workload struct {
	name   string
	create func(ctx context.Context, ns, app string) error
	// atMostOne marks the workloads whose guarantee is asserted: never two
	// running, and a replacement Ready within the old Pod's grace + 2 s.
	atMostOne bool
}

var workloads = []workload{
	{name: "Deployment, 1 replica, Recreate (no webhook)", create: func(ctx context.Context, ns, app string) error {
		_, err := cl.Clientset.AppsV1().Deployments(ns).Create(ctx, recreateOfOne(ns, app), metav1.CreateOptions{})
		return err
	}},
	{name: "singleton, replicas mode", atMostOne: true, create: func(ctx context.Context, ns, app string) error {
		_, err := cl.Clientset.AppsV1().Deployments(ns).Create(ctx, singleton(ns, app), metav1.CreateOptions{})
		return err
	}},
	{name: "StatefulSet, 1 replica", create: func(ctx context.Context, ns, app string) error {
		_, err := cl.Clientset.AppsV1().StatefulSets(ns).Create(ctx, statefulSetOfOne(ns, app), metav1.CreateOptions{})
		return err
	}},
}

// fault disrupts the serving Pod old of a workload. It returns once the
// fault is in and, for node loss, once an administrator has resolved it;
// from is when the replacement's clock starts: the fault, or the
// administrator's force delete.
type fault struct {
	name string
	do   func(t *testing.T, tr *tracker, old *corev1.Pod) (from time.Time, undo func())
}

var faults = []fault{
	{name: "kubectl delete pod", do: func(t *testing.T, _ *tracker, old *corev1.Pod) (time.Time, func()) {
		run(t, "-n", old.Namespace, "delete", "pod", old.Name, "--wait=false")
		return time.Now(), func() {}
	}},
	{name: "kubectl delete pod, the app exits 1 s after SIGTERM", do: func(t *testing.T, _ *tracker, old *corev1.Pod) (time.Time, func()) {
		run(t, "-n", old.Namespace, "delete", "pod", old.Name, "--wait=false")
		from := time.Now()
		time.Sleep(time.Second)
		if err := cl.MarkStopped(ctxFor(t, 30*time.Second), old.Namespace, old.Name); err != nil {
			t.Fatal(err)
		}
		return from, func() {}
	}},
	{name: "eviction (Eviction API)", do: func(t *testing.T, _ *tracker, old *corev1.Pod) (time.Time, func()) {
		ev := &policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Name: old.Name, Namespace: old.Namespace}}
		if err := cl.Clientset.PolicyV1().Evictions(old.Namespace).Evict(ctxFor(t, 30*time.Second), ev); err != nil {
			t.Fatalf("evict %s: %v", old.Name, err)
		}
		return time.Now(), func() {}
	}},
	{name: "kubectl drain of its node", do: func(t *testing.T, _ *tracker, old *corev1.Pod) (time.Time, func()) {
		node := old.Spec.NodeName
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			// drain blocks until the Pod is gone; the test watches meanwhile.
			_, _, _ = tryRun(t, "drain", node, "--ignore-daemonsets", "--delete-emptydir-data", "--timeout=90s")
		}()
		return time.Now(), func() {
			wg.Wait()
			run(t, "uncordon", node)
		}
	}},
	{name: "node lost, then the old Pod force-deleted", do: nodeLoss},
}

// nodeLoss stops the heartbeats of old's node, waits until the
// node-lifecycle controller evicts old (it then stays Terminating: its node
// cannot confirm), lets 5 s pass, and force-deletes old as an administrator
// would.
func nodeLoss(t *testing.T, tr *tracker, old *corev1.Pod) (time.Time, func()) {
	node := old.Spec.NodeName
	if err := cl.StopNode(node); err != nil {
		t.Fatal(err)
	}
	undo := func() {
		if err := cl.StartNode(context.Background(), node); err != nil {
			t.Errorf("bring node %s back: %v", node, err)
		}
	}
	tr.waitFor(nodeMonitorGrace+time.Minute, "the lost node's Pod evicted", func(ps []*corev1.Pod) bool {
		for _, p := range ps {
			if p.UID == old.UID {
				return p.DeletionTimestamp != nil
			}
		}
		return true
	})
	time.Sleep(5 * time.Second)
	err := cl.Clientset.CoreV1().Pods(old.Namespace).Delete(ctxFor(t, 30*time.Second), old.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)})
	if err != nil {
		t.Fatalf("force delete %s: %v", old.Name, err)
	}
	return time.Now(), undo
}

// result is one row of the fault table.
type result struct {
	workload, fault string
	w               window
	replacement     time.Duration // from the fault (or force delete) to a new Pod serving
}

// TestFaults disrupts the one Pod of each workload with every fault and
// measures, from a Pod watch, how long two of its Pods ran at once and how
// long none served. The replicas-mode singleton must never run two; the
// others are the comparison.
func TestFaults(t *testing.T) {
	var results []result
	for i, wl := range workloads {
		t.Run(wl.name, func(t *testing.T) {
			ns := newNamespace(t)
			app := fmt.Sprintf("one-%d", i)
			if err := wl.create(ctxFor(t, time.Minute), ns, app); err != nil {
				t.Fatal(err)
			}
			tr := track(t, cl.Clientset, ns, "app="+app)
			for _, f := range faults {
				old := onlyPod(t, tr)
				tr.reset()
				from, undo := f.do(t, tr, old)
				tr.waitFor(90*time.Second, f.name+": a replacement serving", servingOtherThan(old.UID))
				took, _ := tr.servingAfter(old.UID, from)
				tr.waitFor(90*time.Second, f.name+": the old Pod gone", gone(old.UID))
				undo()
				w := tr.read()
				r := result{workload: wl.name, fault: f.name, w: w, replacement: took}
				results = append(results, r)
				t.Logf("%s, %s: %s; replacement serving %.1fs after the fault", wl.name, f.name, w, took.Seconds())
				if !wl.atMostOne {
					continue
				}
				if w.Overlap > 0 || w.MaxAlive > 1 {
					t.Errorf("%s: %s; want never two Pods running", f.name, w)
				}
				limit := grace*time.Second + 2*time.Second
				if strings.HasPrefix(f.name, "node lost") {
					limit = 2 * time.Second
				}
				if took > limit {
					t.Errorf("%s: the replacement served %.1fs after the old Pod's grace period started (or its force delete), want at most %s", f.name, took.Seconds(), limit)
				}
			}
		})
	}
	writeReport(t, results)
}

// writeReport writes the fault table to $CLUSTER_REPORT, if set.
func writeReport(t *testing.T, results []result) {
	path := os.Getenv("CLUSTER_REPORT")
	if path == "" {
		return
	}
	var b strings.Builder
	b.WriteString("| workload | fault | two Pods running (s) | none serving (s) | replacement serving after the fault (s) |\n|---|---|---|---|---|\n")
	for _, r := range results {
		fmt.Fprintf(&b, "| %s | %s | **%.1f** | %.1f | %.1f |\n", r.workload, r.fault, r.w.Overlap.Seconds(), r.w.Down.Seconds(), r.replacement.Seconds())
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Errorf("write report: %v", err)
	}
}
