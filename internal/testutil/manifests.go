package testutil

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// SingletonsManifest writes, into a file of t's temporary directory, what a
// user applies to try both modes in namespace ns: a replicas-mode singleton
// solo (3 replicas asked) and an election-mode singleton duo (2 replicas),
// their Pods with the given termination grace period; with namespace, the
// Namespace too. It returns the file's path.
func SingletonsManifest(t testing.TB, ns string, grace int, namespace bool) string {
	t.Helper()
	m := fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: solo
  namespace: %[1]s
  annotations: {singleton: "true"}
spec:
  replicas: 3
  selector: {matchLabels: {app: solo}}
  template:
    metadata: {labels: {app: solo}}
    spec:
      terminationGracePeriodSeconds: %[2]d
      containers: [{name: app, image: registry.k8s.io/pause:3.10}]
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: duo
  namespace: %[1]s
  annotations: {singleton: "true", singleton.dev/mode: election}
spec:
  replicas: 2
  selector: {matchLabels: {app: duo}}
  template:
    metadata: {labels: {app: duo}}
    spec:
      terminationGracePeriodSeconds: %[2]d
      containers: [{name: app, image: registry.k8s.io/pause:3.10}]
`, ns, grace)
	if namespace {
		m = fmt.Sprintf("apiVersion: v1\nkind: Namespace\nmetadata: {name: %s}\n---\n", ns) + m
	}
	p := filepath.Join(t.TempDir(), "singletons.yaml")
	if err := os.WriteFile(p, []byte(m), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
