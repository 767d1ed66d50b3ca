//go:build integration

package cluster

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// denyManifest is a deny-mode singleton as a GitOps repository holds it;
// fixed says whether it is written as a singleton already.
func denyManifest(ns string, fixed bool) string {
	replicas, strategy, labels, gates := "3", "", "app: gitops", ""
	if fixed {
		replicas = "1"
		strategy = "\n  strategy: {type: Recreate}"
		labels = "app: gitops\n        singleton.dev/deployment: gitops"
		gates = "\n      schedulingGates: [{name: singleton.dev/one-at-a-time}]"
	}
	return `apiVersion: apps/v1
kind: Deployment
metadata:
  name: gitops
  namespace: ` + ns + `
  annotations:
    singleton: "true"
    singleton.dev/enforcement: deny
spec:
  replicas: ` + replicas + strategy + `
  selector:
    matchLabels: {app: gitops}
  template:
    metadata:
      labels:
        ` + labels + `
    spec:` + gates + `
      terminationGracePeriodSeconds: 10
      containers:
      - name: app
        image: registry.k8s.io/pause:3.10
`
}

// Deny mode: the webhook refuses a singleton that is not one as written,
// with the message mutate --check gives in CI, and accepts the fixed
// manifest as written, so a GitOps tool sees no drift.
func TestDenyModeRefusesThenAcceptsAsWritten(t *testing.T) {
	ns := newNamespace(t)
	dir := t.TempDir()
	bad, good := filepath.Join(dir, "bad.yaml"), filepath.Join(dir, "good.yaml")
	for p, fixed := range map[string]bool{bad: false, good: true} {
		if err := os.WriteFile(p, []byte(denyManifest(ns, fixed)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	_, stderr, err := tryRun(t, "apply", "--server-side", "-f", bad)
	if err == nil {
		t.Fatal("a deny-mode singleton with 3 replicas was admitted")
	}
	check := exec.Command(binary, "mutate", "--check", "-f", bad)
	out, _ := check.CombinedOutput()
	if check.ProcessState.ExitCode() != 1 {
		t.Fatalf("mutate --check exited %d, want 1:\n%s", check.ProcessState.ExitCode(), out)
	}
	msg := strings.TrimSpace(strings.TrimPrefix(string(out), "Error: denied: Deployment "+ns+"/gitops: "))
	if !strings.Contains(msg, "spec.replicas is 3: write spec.replicas: 1") || !strings.Contains(stderr, msg) {
		t.Errorf("the webhook said:\n%s\nmutate --check said:\n%s\nwant the same message, naming spec.replicas", stderr, msg)
	}

	tr := track(t, cl.Clientset, ns, "app=gitops")
	_, stderr = run(t, "apply", "--server-side", "-f", good)
	if strings.Contains(stderr, "Warning") {
		t.Errorf("the fixed manifest drew warnings: %s", stderr)
	}
	onlyPod(t, tr)
	ann, _ := run(t, "-n", ns, "get", "deploy", "gitops", "-o", "jsonpath={.metadata.annotations}")
	if strings.Contains(ann, "original-") {
		t.Errorf("deny mode wrote bookkeeping annotations %s: drift for a GitOps tool", ann)
	}
	diff, _, err := tryRun(t, "diff", "--server-side", "-f", good)
	if err != nil || diff != "" {
		t.Errorf("kubectl diff of the applied manifest: %v\n%s\nwant no difference", err, diff)
	}

	// Scaled while the webhook is down, a deny-mode singleton is set back to
	// one replica by the drift controller itself: the webhook would refuse
	// a write-back of three.
	restart := stopWebhook(t)
	run(t, "-n", ns, "scale", "deploy/gitops", "--replicas=3")
	restart()
	if replicas := waitReplicas(t, ns, "gitops", "1"); replicas != "1" {
		t.Errorf("deny-mode singleton scaled during an outage has %s replicas, want the drift controller's 1", replicas)
	}
	time.Sleep(time.Second)
	if w := tr.read(); w.MaxAlive > 1 {
		t.Errorf("deny mode through an outage and a scale: %s; want never two running", w)
	}
	for _, p := range tr.snapshot() {
		if p.DeletionTimestamp == nil && len(p.Spec.SchedulingGates) > 0 {
			t.Errorf("pod %s still gated after the re-pin: %s", p.Name, describe([]*corev1.Pod{p}))
		}
	}
}
