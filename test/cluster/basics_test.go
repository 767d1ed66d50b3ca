//go:build integration

package cluster

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/singleton-webhook/singleton-webhook/patches"
)

// An ordinary Deployment runs as on any cluster: Pods scheduled on the
// simulated nodes, Ready, with IPs, behind a Service's EndpointSlice.
func TestOrdinaryDeploymentGetsReadyPodsBehindAService(t *testing.T) {
	ns := newNamespace(t)
	ctx := ctxFor(t, 2*time.Minute)
	tr := track(t, cl.Clientset, ns, "app=web")
	if _, err := cl.Clientset.AppsV1().Deployments(ns).Create(ctx, deployment(ns, "web", 3, nil), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "web"},
			Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}}},
	}
	if _, err := cl.Clientset.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var ips []string
	tr.waitFor(time.Minute, "3 Ready Pods with IPs", func(ps []*corev1.Pod) bool {
		ips = nil
		for _, p := range ps {
			if ready(p) && p.Status.PodIP != "" && p.Spec.NodeName != "" {
				ips = append(ips, p.Status.PodIP)
			}
		}
		return len(ips) == 3
	})
	slices.Sort(ips)
	if len(slices.Compact(slices.Clone(ips))) != 3 {
		t.Errorf("pod IPs %v are not distinct", ips)
	}
	deadline := time.Now().Add(time.Minute)
	var got []string
	for time.Now().Before(deadline) {
		list, err := cl.Clientset.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=web"})
		if err != nil {
			t.Fatal(err)
		}
		got = got[:0]
		for _, s := range list.Items {
			for _, e := range s.Endpoints {
				if e.Conditions.Ready != nil && *e.Conditions.Ready {
					got = append(got, e.Addresses...)
				}
			}
		}
		if len(got) == 3 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	slices.Sort(got)
	if strings.Join(got, ",") != strings.Join(ips, ",") {
		t.Errorf("EndpointSlice ready addresses %v, want the Pod IPs %v", got, ips)
	}
	if w := tr.read(); w.MaxAlive != 3 {
		t.Errorf("an ordinary Deployment of 3 ran at most %d Pods, want 3 (the webhook must not touch it)", w.MaxAlive)
	}
	for _, p := range tr.snapshot() {
		checkUngated(t, p, "an ordinary Deployment")
	}
}

// A replicas-mode singleton created with 3 replicas and a rolling update
// never runs two Pods: not at creation, not in a rollout, not when scaled,
// not on a restart.
func TestSingletonRunsOnePodThroughRollouts(t *testing.T) {
	ns := newNamespace(t)
	tr := track(t, cl.Clientset, ns, "app=worker")
	if _, err := cl.Clientset.AppsV1().Deployments(ns).Create(ctxFor(t, time.Minute), singleton(ns, "worker"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	first := onlyPod(t, tr)
	steps := []struct {
		name string
		args []string
		want string // in kubectl's stderr
	}{
		{"set image", []string{"set", "image", "deploy/worker", "app=registry.k8s.io/pause:3.9"}, ""},
		{"scale", []string{"scale", "deploy/worker", "--replicas=4"}, "forced from 4 to 1"},
		{"rollout restart", []string{"rollout", "restart", "deploy/worker"}, ""},
	}
	prev := first
	for _, s := range steps {
		_, stderr := run(t, append([]string{"-n", ns}, s.args...)...)
		if s.want != "" && !strings.Contains(stderr, s.want) {
			t.Errorf("%s: kubectl printed %q, want a warning with %q", s.name, stderr, s.want)
		}
		if s.name == "scale" {
			// Nothing to roll out; the Pod stays.
			time.Sleep(2 * time.Second)
			continue
		}
		tr.waitFor(time.Minute, s.name+": a new Pod serving", servingOtherThan(prev.UID))
		prev = onlyPod(t, tr)
	}
	out, _ := run(t, "-n", ns, "get", "deploy", "worker", "-o", "jsonpath={.spec.replicas} {.spec.strategy.type}")
	if out != "1 Recreate" {
		t.Errorf("stored replicas and strategy %q, want \"1 Recreate\"", out)
	}
	if w := tr.read(); w.MaxAlive > 1 || w.Overlap > 0 {
		t.Errorf("singleton through creation, set image, scale and restart: %s; want never two running", w)
	}
}

// Pods of a Deployment that is not a singleton, or no longer one, are never
// gated.
func TestOnlySingletonsAreGated(t *testing.T) {
	ns := newNamespace(t)
	ctx := ctxFor(t, 2*time.Minute)
	tr := track(t, cl.Clientset, ns, "app=leaver")
	if _, err := cl.Clientset.AppsV1().Deployments(ns).Create(ctx, singleton(ns, "leaver"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	first := onlyPod(t, tr)
	_, stderr := run(t, "-n", ns, "annotate", "--overwrite", "deploy/leaver", "singleton=false")
	if !strings.Contains(stderr, "removed the scheduling gate") {
		t.Errorf("leaving replicas mode printed %q, want a warning that the gate is removed", stderr)
	}
	tr.waitFor(time.Minute, "a Pod of the opted-out Deployment serving", servingOtherThan(first.UID))
	for _, p := range tr.snapshot() {
		if p.UID != first.UID {
			checkUngated(t, p, "a Deployment that left replicas mode")
		}
	}
}

// While the webhook is down no new Pod of a singleton starts: a scale that
// slipped past it (the scale entry fails open) and a replacement wait,
// SchedulingGated. Back up, the webhook re-pins the Deployment to one
// replica and releases exactly one Pod.
func TestWebhookOutageHoldsNewPods(t *testing.T) {
	ns := newNamespace(t)
	tr := track(t, cl.Clientset, ns, "app=outage")
	if _, err := cl.Clientset.AppsV1().Deployments(ns).Create(ctxFor(t, time.Minute), singleton(ns, "outage"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	old := onlyPod(t, tr)
	restart := stopWebhook(t)
	run(t, "-n", ns, "scale", "deploy/outage", "--replicas=3")
	run(t, "-n", ns, "delete", "pod", old.Name, "--wait=false")
	if err := cl.MarkStopped(ctxFor(t, 30*time.Second), ns, old.Name); err != nil {
		t.Fatal(err)
	}
	tr.waitFor(time.Minute, "the old Pod gone and 3 gated Pods waiting", func(ps []*corev1.Pod) bool {
		gated := 0
		for _, p := range ps {
			if p.UID == old.UID {
				return false
			}
			if len(p.Spec.SchedulingGates) > 0 {
				gated++
			}
		}
		return gated == 3
	})
	time.Sleep(3 * time.Second)
	if w := tr.read(); w.MaxAlive > 1 {
		t.Fatalf("during the outage: %s; want no new Pod started", w)
	}
	for _, p := range tr.snapshot() {
		if runs(p) {
			t.Errorf("pod %s runs while the webhook is down", p.Name)
		}
	}
	restart()
	tr.waitFor(time.Minute, "one Pod serving after the webhook is back", servingOtherThan(old.UID))
	if got := waitReplicas(t, ns, "outage", "1"); got != "1" {
		t.Errorf("replicas %q after the webhook came back, want the drift controller's re-pin to 1", got)
	}
	time.Sleep(2 * time.Second)
	if w := tr.read(); w.MaxAlive > 1 || w.Overlap > 0 {
		t.Errorf("outage and recovery: %s; want never two running", w)
	}
}

// checkUngated fails the test if p, a Pod of owner, carries the scheduling
// gate or the Deployment label of replicas mode.
func checkUngated(t *testing.T, p *corev1.Pod, owner string) {
	t.Helper()
	if len(p.Spec.SchedulingGates) > 0 || p.Labels[patches.LabelDeployment] != "" {
		t.Errorf("pod %s of %s carries gates %v, labels %v", p.Name, owner, p.Spec.SchedulingGates, p.Labels)
	}
}

// stopWebhook stops the suite's webhook and returns the function that
// starts it again; if the test ends without calling it, the webhook is
// started again then, for the tests that follow.
func stopWebhook(t *testing.T) (restart func()) {
	t.Helper()
	hook.Stop()
	restarted := false
	restart = func() {
		t.Helper()
		h, err := cl.StartWebhook(context.Background(), binary)
		if err != nil {
			t.Fatalf("restart the webhook: %v", err)
		}
		hook, restarted = h, true
	}
	t.Cleanup(func() {
		if !restarted {
			restart()
		}
	})
	return restart
}

// waitReplicas waits up to a minute for a Deployment's spec.replicas to read
// want, and returns what it last read.
func waitReplicas(t *testing.T, ns, name, want string) string {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	got := ""
	for time.Now().Before(deadline) {
		if got, _ = run(t, "-n", ns, "get", "deploy", name, "-o", "jsonpath={.spec.replicas}"); got == want {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	return got
}
