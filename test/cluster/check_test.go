//go:build integration

package cluster

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/singleton-webhook/singleton-webhook/internal/ops"
)

// TestCheckFindsAGateOverdue loses the node of a replicas-mode singleton's
// Pod: the node-lifecycle controller deletes the Pod, which stays
// Terminating (its node cannot confirm), and the replacement waits behind
// the gate. Once the old Pod's grace period is over, check reports that
// wait (SW202) with the force-delete command, and nothing else.
func TestCheckFindsAGateOverdue(t *testing.T) {
	ns := newNamespace(t)
	if _, err := cl.Clientset.AppsV1().Deployments(ns).Create(ctxFor(t, time.Minute), singleton(ns, "lost"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	tr := track(t, cl.Clientset, ns, "app=lost")
	old := onlyPod(t, tr)
	in := ops.Install{Namespace: "singleton-system", WebhookConfiguration: "singleton-webhook", Deployment: "singleton-webhook",
		LeaderLease: "singleton-webhook.singleton.dev", ProbeNamespace: "default", CertMinRemaining: time.Hour}
	check := func() string {
		r, err := ops.Check(ctxFor(t, time.Minute), cl.Clientset, ops.Scope{Namespace: ns}, in)
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
	if got := check(); got != "" {
		t.Fatalf("before the node is lost: findings %s", got)
	}
	node := old.Spec.NodeName
	if err := cl.StopNode(node); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := cl.StartNode(context.Background(), node); err != nil {
			t.Errorf("bring node %s back: %v", node, err)
		}
		_ = cl.Clientset.CoreV1().Pods(ns).Delete(context.Background(), old.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)})
	}()
	var end time.Time
	tr.waitFor(nodeMonitorGrace+time.Minute, "the lost node's Pod deleted and a replacement gated", func(ps []*corev1.Pod) bool {
		gated := false
		for _, p := range ps {
			if p.UID == old.UID && p.DeletionTimestamp != nil {
				end = p.DeletionTimestamp.Time
			}
			gated = gated || len(p.Spec.SchedulingGates) > 0
		}
		return !end.IsZero() && gated
	})
	time.Sleep(time.Until(end.Add(5 * time.Second)))
	if got, want := check(), "SW202 deployment/"+ns+"/lost"; got != want {
		t.Errorf("findings %q, want only %q", got, want)
	}
}
