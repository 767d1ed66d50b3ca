//go:build integration

package cluster

import (
	"context"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/singleton-webhook/singleton-webhook/controllers"
	"github.com/singleton-webhook/singleton-webhook/patches"
)

// Opting a namespace out (docs/install.md, "Namespaces") on the cluster:
// what admission and the election controllers no longer do there, and the
// gate release that goes on. The controllers' side alone is in
// controllers/scope_integration_test.go.

// A replicas-mode singleton's replacement Pod waits, gated, for its
// Terminating predecessor; the namespace is opted out meanwhile. When the
// old Pod goes, the waiting Pod is still released (the gate controller acts
// wherever a gated Pod waits) and serves; never two Pods run.
func TestOptOutWithAGatedPodWaiting(t *testing.T) {
	ns := newNamespace(t)
	tr := track(t, cl.Clientset, ns, "app=held")
	if _, err := cl.Clientset.AppsV1().Deployments(ns).Create(ctxFor(t, time.Minute), singleton(ns, "held"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	old := onlyPod(t, tr)
	tr.reset()
	// Deleted, the old Pod stays Terminating for its grace period (10 s):
	// its replacement waits.
	run(t, "-n", ns, "delete", "pod", old.Name, "--wait=false")
	tr.waitFor(30*time.Second, "a replacement waiting, gated", func(ps []*corev1.Pod) bool {
		return slices.ContainsFunc(ps, func(p *corev1.Pod) bool {
			return p.UID != old.UID && len(p.Spec.SchedulingGates) > 0 && !runs(p)
		})
	})
	run(t, "label", "namespace", ns, controllers.OptOutLabel+"="+controllers.OptOutValue)
	// The controllers' cache sees the label before the old Pod goes.
	time.Sleep(time.Second)
	for _, p := range tr.snapshot() {
		if p.UID != old.UID && runs(p) {
			t.Fatalf("pod %s runs while %s is still Terminating", p.Name, old.Name)
		}
	}
	stopped := time.Now()
	if err := cl.MarkStopped(ctxFor(t, 30*time.Second), ns, old.Name); err != nil {
		t.Fatal(err)
	}
	tr.waitFor(30*time.Second, "the waiting Pod released and serving in the opted-out namespace", servingOtherThan(old.UID))
	took, _ := tr.servingAfter(old.UID, stopped)
	w := tr.read()
	t.Logf("opted out with a gated Pod waiting: it served %s after the old Pod stopped; %s", took.Round(10*time.Millisecond), w)
	if w.Overlap > 0 || w.MaxAlive > 1 {
		t.Errorf("%s; want never two Pods running", w)
	}
}

// An annotated election-mode Deployment in an opted-out namespace, in
// kube-system and in the webhook's own namespace is neither mutated (no
// sidecar, replicas as written) nor given a Lease, Role, RoleBinding or
// leader Service; the same Deployment in an ordinary namespace, created
// last, gets all four, so the controllers have seen the others by then.
func TestNoElectionObjectsOutsideTheScope(t *testing.T) {
	ctx := ctxFor(t, 2*time.Minute)
	cs := cl.Clientset
	off := newNamespace(t)
	run(t, "label", "namespace", off, controllers.OptOutLabel+"="+controllers.OptOutValue)
	in := newNamespace(t)
	name := "scoped-" + in // unique in the shared namespaces
	annotations := map[string]string{patches.AnnotationSingleton: "true", patches.AnnotationMode: "election", patches.AnnotationLeaderService: "true"}
	outside := []string{off, controllers.SystemNamespace, "singleton-system"}
	for _, ns := range outside {
		if _, err := cs.AppsV1().Deployments(ns).Create(ctx, deployment(ns, name, 2, annotations), metav1.CreateOptions{}); err != nil {
			t.Fatalf("create deployment in %s: %v", ns, err)
		}
		t.Cleanup(func() {
			_ = cs.AppsV1().Deployments(ns).Delete(context.Background(), name, metav1.DeleteOptions{})
		})
	}
	if _, err := cs.AppsV1().Deployments(in).Create(ctx, deployment(in, name, 2, annotations), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	created := time.Now()
	waitUntil(t, time.Minute, "the Lease, Role, RoleBinding and leader Service in "+in, func() bool {
		for _, get := range electionObjects(ctx, in, name) {
			if get() != nil {
				return false
			}
		}
		return true
	})
	t.Logf("the election objects of the Deployment in scope appeared %s after its creation", time.Since(created).Round(10*time.Millisecond))
	// Then, for 3 s more, none may appear outside.
	for end := time.Now().Add(3 * time.Second); time.Now().Before(end); time.Sleep(250 * time.Millisecond) {
		for _, ns := range outside {
			for what, get := range electionObjects(ctx, ns, name) {
				if err := get(); !apierrors.IsNotFound(err) {
					t.Fatalf("%s: %s of %s: %v, want none", ns, what, name, errOrFound(err))
				}
			}
		}
	}
	for _, ns := range outside {
		d, err := cs.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		_, injected := d.Spec.Template.Annotations[patches.AnnotationInjected]
		if injected || len(d.Spec.Template.Spec.Containers) != 1 || *d.Spec.Replicas != 2 {
			t.Errorf("%s: the Deployment was mutated (injected %t, %d containers, %d replicas), want it as written", ns, injected, len(d.Spec.Template.Spec.Containers), *d.Spec.Replicas)
		}
	}
}

// electionObjects reads what the election controllers keep for the
// Deployment name in ns, by kind.
func electionObjects(ctx context.Context, ns, name string) map[string]func() error {
	cs := cl.Clientset
	return map[string]func() error{
		"Lease": func() error {
			_, err := cs.CoordinationV1().Leases(ns).Get(ctx, name, metav1.GetOptions{})
			return err
		},
		"Role": func() error {
			_, err := cs.RbacV1().Roles(ns).Get(ctx, controllers.RoleBindingPrefix+name, metav1.GetOptions{})
			return err
		},
		"RoleBinding": func() error {
			_, err := cs.RbacV1().RoleBindings(ns).Get(ctx, controllers.RoleBindingPrefix+name, metav1.GetOptions{})
			return err
		},
		"leader Service": func() error {
			_, err := cs.CoreV1().Services(ns).Get(ctx, name+patches.LeaderServiceSuffix, metav1.GetOptions{})
			return err
		},
	}
}

func errOrFound(err error) string {
	if err == nil {
		return "it exists"
	}
	return err.Error()
}
