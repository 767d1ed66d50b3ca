//go:build integration

package cluster

import (
	"context"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/singleton-webhook/singleton-webhook/patches"
)

// The commands of docs/install.md, "Emergency recovery", run as written
// through kubectl and the binary, on the situations they are for.

// gatedWaiting is a condition: the Pod old is gone and one other Pod waits,
// gated and not running.
func gatedWaiting(old *corev1.Pod) func([]*corev1.Pod) bool {
	return func(ps []*corev1.Pod) bool {
		waiting := 0
		for _, p := range ps {
			if p.UID == old.UID || runs(p) {
				return false
			}
			if len(p.Spec.SchedulingGates) > 0 {
				waiting++
			}
		}
		return waiting == 1
	}
}

// gatedPod returns the name of the one gated Pod of a tracker.
func gatedPod(t *testing.T, tr *tracker) string {
	t.Helper()
	for _, p := range tr.snapshot() {
		if len(p.Spec.SchedulingGates) > 0 && p.DeletionTimestamp == nil {
			return p.Name
		}
	}
	t.Fatalf("no gated Pod; pods: %s", describe(tr.snapshot()))
	return ""
}

// The webhook process is down, with its controllers: (1) a write to a
// singleton is refused until the webhook configuration is deleted; (2) a
// new Pod of a replicas-mode singleton stays gated until the singleton is
// released, with `singleton-webhook release -n NAMESPACE` or with the
// kubectl commands (two, and the third for a paused Deployment).
// Reinstalled, the webhook re-pins the Deployment
// written meanwhile and leaves the released ones released.
func TestRecoveryWhileTheWebhookIsDown(t *testing.T) {
	ctx := ctxFor(t, 4*time.Minute)
	names := []string{"write", "release", "byhand", "paused"}
	nss, trs, olds := map[string]string{}, map[string]*tracker{}, map[string]*corev1.Pod{}
	for _, n := range names {
		nss[n] = newNamespace(t)
		trs[n] = track(t, cl.Clientset, nss[n], "app=stuck")
		if _, err := cl.Clientset.AppsV1().Deployments(nss[n]).Create(ctx, singleton(nss[n], "stuck"), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range names {
		olds[n] = onlyPod(t, trs[n])
		trs[n].reset()
	}
	run(t, "-n", nss["paused"], "rollout", "pause", "deploy/stuck")
	restart := stopWebhook(t)

	// (1) Writes refused.
	unpin := []string{"-n", nss["write"], "patch", "deploy/stuck", "--type=merge", "-p", `{"spec":{"replicas":3}}`}
	if _, stderr, err := tryRun(t, unpin...); err == nil || !strings.Contains(stderr, "failed calling webhook") {
		t.Fatalf("a write to a singleton with the webhook down: err %v, %s; want it refused by the webhook call", err, stderr)
	}
	// (2) Replacements gated: the old Pods go, nothing lifts the gates.
	gated := []string{"release", "byhand", "paused"}
	for _, n := range gated {
		run(t, "-n", nss[n], "delete", "pod", olds[n].Name, "--wait=false")
		if err := cl.MarkStopped(ctx, nss[n], olds[n].Name); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range gated {
		trs[n].waitFor(time.Minute, n+": the old Pod gone and its replacement waiting, gated", gatedWaiting(olds[n]))
	}

	// (1) The fix: delete the webhook configuration; the write passes.
	deleted := time.Now()
	run(t, "delete", "mutatingwebhookconfiguration", "singleton-webhook")
	var stderr string
	var err error
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
		if _, stderr, err = tryRun(t, unpin...); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("the write after the webhook configuration's deletion: %v\n%s", err, stderr)
	}
	t.Logf("(1) the write passed %s after the webhook configuration's deletion", time.Since(deleted).Round(10*time.Millisecond))
	if got, _ := run(t, "-n", nss["write"], "get", "deploy", "stuck", "-o", "jsonpath={.spec.replicas}"); got != "3" {
		t.Fatalf("replicas %q after the unmutated write, want 3 as written", got)
	}

	// (2) release -n NAMESPACE.
	start := time.Now()
	out, err := exec.Command(binary, "release", "-n", nss["release"], "--kubeconfig", cl.Kubeconfig).CombinedOutput()
	t.Logf("release:\n%s", out)
	if err != nil {
		t.Fatalf("release: %v", err)
	}
	trs["release"].waitFor(time.Minute, "a Pod serving after the release", servingOtherThan(olds["release"].UID))
	t.Logf("(2) release -n: a Pod served %s after the command started", time.Since(start).Round(10*time.Millisecond))

	// (2) The same by hand: the template change rolls the Deployment, whose
	// new Pod has no gate; a paused Deployment does not roll, and its gated
	// Pod's gate is lifted by hand.
	for _, n := range []string{"byhand", "paused"} {
		ns, pod := nss[n], gatedPod(t, trs[n])
		start = time.Now()
		run(t, "-n", ns, "annotate", "deployment", "stuck", patches.AnnotationReleased+"=true")
		run(t, "-n", ns, "patch", "deployment", "stuck", "--type=json", "-p", `[{"op":"remove","path":"/spec/template/spec/schedulingGates"}]`)
		if n == "paused" {
			time.Sleep(time.Second)
			if got := gatedPod(t, trs[n]); got != pod {
				t.Fatalf("paused: gated Pod %s, want %s still waiting", got, pod)
			}
			run(t, "-n", ns, "patch", "pod", pod, "--type=json", "-p", `[{"op":"remove","path":"/spec/schedulingGates"}]`)
		}
		trs[n].waitFor(time.Minute, n+": a Pod serving after the commands by hand", servingOtherThan(olds[n].UID))
		t.Logf("(2) by hand, %s Deployment: a Pod served %s after the first command", n, time.Since(start).Round(10*time.Millisecond))
	}

	// Reinstalled: the Deployment written meanwhile is pinned again, the
	// released ones stay released.
	restart()
	if got := waitReplicas(t, nss["write"], "stuck", "1"); got != "1" {
		t.Errorf("replicas %q after the reinstall, want the drift controller's re-pin to 1", got)
	}
	for _, n := range gated {
		d, err := cl.Clientset.AppsV1().Deployments(nss[n]).Get(ctx, "stuck", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if patches.HasGate(d) || !patches.Released(d.Annotations) {
			t.Errorf("%s after the reinstall: gate %t, released %t; want released, no gate", n, patches.HasGate(d), patches.Released(d.Annotations))
		}
	}
	for _, n := range names {
		if w := trs[n].read(); w.Overlap > 0 || w.MaxAlive > 1 {
			t.Errorf("%s: %s; want never two Pods running", n, w)
		}
	}
}

// preferNode is an affinity for node, so that two singletons share it.
func preferNode(node string) *corev1.Affinity {
	return &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
		PreferredDuringSchedulingIgnoredDuringExecution: []corev1.PreferredSchedulingTerm{{Weight: 100,
			Preference: corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{{
				Key: corev1.LabelHostname, Operator: corev1.NodeSelectorOpIn, Values: []string{node}}}}}}}}
}

// (3) A replacement waits for a Pod stuck Terminating on a lost node: the
// Event on the waiting Pod names the old one (kubectl describe); `kubectl
// delete pod OLD --force --grace-period=0` frees one singleton, the taint
// node.kubernetes.io/out-of-service on the node the other.
func TestRecoveryFromAPodStuckOnALostNode(t *testing.T) {
	ctx := ctxFor(t, 4*time.Minute)
	ns := newNamespace(t)
	node := cl.Nodes[0]
	apps := []string{"forced", "tainted"}
	trs, olds := map[string]*tracker{}, map[string]*corev1.Pod{}
	for _, app := range apps {
		d := singleton(ns, app)
		d.Spec.Template.Spec.Affinity = preferNode(node)
		trs[app] = track(t, cl.Clientset, ns, "app="+app)
		if _, err := cl.Clientset.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, app := range apps {
		olds[app] = onlyPod(t, trs[app])
		if olds[app].Spec.NodeName != node {
			t.Fatalf("pod %s runs on %s, want %s (preferred)", olds[app].Name, olds[app].Spec.NodeName, node)
		}
		trs[app].reset()
	}
	if err := cl.StopNode(node); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { restoreNode(t, node) })
	for _, app := range apps {
		trs[app].waitFor(nodeMonitorGrace+time.Minute, app+": the lost node's Pod Terminating and a replacement waiting", func(ps []*corev1.Pod) bool {
			old, waiting := false, false
			for _, p := range ps {
				if p.UID == olds[app].UID {
					old = p.DeletionTimestamp != nil
				} else if len(p.Spec.SchedulingGates) > 0 {
					waiting = true
				}
			}
			return old && waiting
		})
	}
	// What the waiting Pod waits for, as the docs say to look.
	waiting := gatedPod(t, trs["forced"])
	waitUntil(t, 30*time.Second, "kubectl describe of the waiting Pod to name the Pod it waits for", func() bool {
		out, _ := run(t, "-n", ns, "describe", "pod", waiting)
		return strings.Contains(out, olds["forced"].Name)
	})

	forced := time.Now()
	run(t, "-n", ns, "delete", "pod", olds["forced"].Name, "--force", "--grace-period=0")
	trs["forced"].waitFor(time.Minute, "a Pod serving after the force delete", servingOtherThan(olds["forced"].UID))
	took, _ := trs["forced"].servingAfter(olds["forced"].UID, forced)
	t.Logf("(3) force delete: a replacement served %s after it", took.Round(10*time.Millisecond))

	tainted := time.Now()
	run(t, "taint", "node", node, "node.kubernetes.io/out-of-service=nodeshutdown:NoExecute")
	trs["tainted"].waitFor(time.Minute, "a Pod serving after the out-of-service taint", servingOtherThan(olds["tainted"].UID))
	took, _ = trs["tainted"].servingAfter(olds["tainted"].UID, tainted)
	t.Logf("(3) out-of-service taint: the pod garbage collector removed the old Pod and a replacement served %s after the taint", took.Round(10*time.Millisecond))

	for _, app := range apps {
		if w := trs[app].read(); w.Overlap > 0 || w.MaxAlive > 1 {
			t.Errorf("%s: %s; want never two Pods running", app, w)
		}
	}
}

// restoreNode takes the out-of-service taint off node, if there, starts it
// again and waits until the node-lifecycle controller has lifted its
// unreachable taints, so the tests that follow find both nodes as before.
func restoreNode(t *testing.T, node string) {
	t.Helper()
	_, _, _ = tryRun(t, "taint", "node", node, "node.kubernetes.io/out-of-service-")
	if err := cl.StartNode(context.Background(), node); err != nil {
		t.Errorf("bring node %s back: %v", node, err)
		return
	}
	waitUntil(t, time.Minute, "node "+node+" without taints", func() bool {
		n, err := cl.Node(context.Background(), node)
		return err == nil && !slices.ContainsFunc(n.Spec.Taints, func(tn corev1.Taint) bool { return strings.HasPrefix(tn.Key, "node.kubernetes.io/") })
	})
}
