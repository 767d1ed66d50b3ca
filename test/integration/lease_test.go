//go:build integration

package integration

import (
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/singleton-webhook/singleton-webhook/internal/testenv"
	"github.com/singleton-webhook/singleton-webhook/patches"
)

// leaseWarning starts the warning of an election-mode singleton whose Lease
// the webhook did not make for it.
const leaseWarning = "singleton: the leader-election Lease "

// electionSingleton is an election-mode singleton electing on lease (empty:
// its own name).
func electionSingleton(ns, name, lease string) *appsv1.Deployment {
	a := map[string]string{"singleton": "true", patches.AnnotationMode: "election"}
	if lease != "" {
		a[patches.AnnotationLeaseName] = lease
	}
	return deployment(ns, name, 2, a)
}

// foreignLeaseWarned: an election-mode singleton naming a Lease another
// component made is admitted, and client-go and kubectl both receive the
// warning naming that Lease and who made it; one electing on its own Lease
// (none yet at create, the webhook's at a later update) gets no such warning;
// one naming that singleton's Lease is warned again.
func foreignLeaseWarned(t *testing.T, env *testenv.Env) {
	ns := newNamespace(t, env)
	cs, warned := warningClient(t, env)
	foreign := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "kube-thing", Namespace: ns,
		Labels: map[string]string{"app.kubernetes.io/managed-by": "Helm"}}}
	if _, err := cs.CoordinationV1().Leases(ns).Create(ctxFor(t), foreign, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create a Lease of another component: %v", err)
	}
	want := leaseWarning + ns + "/kube-thing exists and is not managed by singleton-webhook " +
		`(app.kubernetes.io/managed-by="Helm", no controller)`
	if _, err := cs.AppsV1().Deployments(ns).Create(ctxFor(t), electionSingleton(ns, "thief", "kube-thing"), metav1.CreateOptions{}); err != nil {
		t.Fatalf("create: %v (a Lease conflict must only warn)", err)
	}
	if !strings.Contains(warned.String(), want) || !strings.Contains(warned.String(), "set singleton.dev/lease-name to a name nothing else uses") {
		t.Errorf("client-go received warnings %q, want one starting %q", warned, want)
	}
	_, stderr, err := env.Kubectl(t, manifest(t, electionSingleton(ns, "other", "kube-thing")), "apply", "-f", "-")
	if err != nil {
		t.Fatalf("kubectl apply: %v: %s", err, stderr)
	}
	if !strings.Contains(stderr, "Warning: "+want) {
		t.Errorf("kubectl printed %q, want the warning %q", stderr, want)
	}

	own, ownWarned := warningClient(t, env)
	if _, err := own.AppsV1().Deployments(ns).Create(ctxFor(t), electionSingleton(ns, "own", ""), metav1.CreateOptions{}); err != nil {
		t.Fatalf("create: %v", err)
	}
	eventually(t, 10*time.Second, "the election controller makes Lease own", func() (bool, string) {
		_, err := cs.CoordinationV1().Leases(ns).Get(ctxFor(t), "own", metav1.GetOptions{})
		return err == nil, "get lease: " + errString(err)
	})
	d, err := own.AppsV1().Deployments(ns).Get(ctxFor(t), "own", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	d.Labels = map[string]string{"touched": "yes"}
	if _, err := own.AppsV1().Deployments(ns).Update(ctxFor(t), d, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("update: %v", err)
	}
	if strings.Contains(ownWarned.String(), leaseWarning) {
		t.Errorf("a singleton electing on its own Lease was warned: %q", ownWarned)
	}

	// The Lease of another singleton, which the controllers' cache holds.
	theirs, theirsWarned := warningClient(t, env)
	if _, err := theirs.AppsV1().Deployments(ns).Create(ctxFor(t), electionSingleton(ns, "second", "own"), metav1.CreateOptions{}); err != nil {
		t.Fatalf("create: %v", err)
	}
	want = leaseWarning + ns + "/own exists and was made by singleton-webhook for Deployment own, not for this Deployment: " +
		"the webhook will not grant the elector sidecar access to it"
	if !strings.Contains(theirsWarned.String(), want) {
		t.Errorf("client-go received warnings %q, want one starting %q", theirsWarned, want)
	}
}

// errString is err's message, or "none".
func errString(err error) string {
	if err == nil {
		return "none"
	}
	return err.Error()
}
