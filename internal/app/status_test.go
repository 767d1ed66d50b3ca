package app

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// runStatus runs `status args` and returns the error and what it printed.
func runStatus(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err = Status(context.Background(), args, &out, &errOut, nil)
	return out.String(), errOut.String(), err
}

func TestStatusBadInputIsOneClearLine(t *testing.T) {
	unreachable := filepath.Join(t.TempDir(), "kubeconfig")
	err := os.WriteFile(unreachable, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
users: [{name: u, user: {token: t}}]
current-context: c
`), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		args []string
		want string
	}{
		"no kubeconfig anywhere": {nil, "no kubeconfig found: pass --kubeconfig FILE, set $KUBECONFIG, or run in a Pod"},
		"an unreachable API server": {[]string{"--kubeconfig", unreachable},
			"API server https://127.0.0.1:1: cannot list deployments in namespace default: dial tcp 127.0.0.1:1: connect: connection refused"},
		"a kubeconfig that does not exist": {[]string{"--kubeconfig", "/nonexistent"}, "load kubeconfig: stat /nonexistent: no such file or directory"},
		"an unknown context":               {[]string{"--kubeconfig", unreachable, "--context", "nope"}, `load kubeconfig: context "nope" does not exist`},
		"-A with -n":                       {[]string{"-A", "-n", "x"}, "-A and -n exclude each other"},
		"an unknown output format":         {[]string{"-o", "xml"}, `-o "xml": want wide, json or yaml`},
		"two names":                        {[]string{"a", "b"}, `status: unexpected argument "b": at most one Deployment name`},
	} {
		t.Run(name, func(t *testing.T) {
			t.Setenv("HOME", t.TempDir())
			t.Setenv("KUBECONFIG", "")
			t.Setenv("KUBERNETES_SERVICE_HOST", "")
			stdout, _, err := runStatus(t, tc.args...)
			if err == nil || err.Error() != tc.want {
				t.Errorf("error %q\n want %q", err, tc.want)
			}
			if stdout != "" {
				t.Errorf("printed %q on a failure", stdout)
			}
		})
	}
}

func TestStatusHelpSaysTheRights(t *testing.T) {
	_, stderr, err := runStatus(t, "-h")
	if err == nil || err.Error() != ErrReported.Error() {
		t.Fatalf("status -h: %v", err)
	}
	for _, w := range []string{"get, list  deployments.apps", "get, list  pods", "get, list  leases.coordination.k8s.io", "-all-namespaces"} {
		if !strings.Contains(stderr, w) {
			t.Errorf("status -h lacks %q:\n%s", w, stderr)
		}
	}
}

func TestPluginName(t *testing.T) {
	for argv0, want := range map[string]bool{
		"/usr/local/bin/kubectl-singleton": true, `kubectl-singleton.exe`: true,
		"singleton-webhook": false, "/x/kubectl-singleton-old": false,
	} {
		if got := IsPluginName(argv0); got != want {
			t.Errorf("IsPluginName(%q) = %v", argv0, got)
		}
	}
}

func TestCheckBadInputIsOneClearLine(t *testing.T) {
	for name, tc := range map[string]struct {
		args []string
		want string
	}{
		"a negative wait":          {[]string{"--wait", "-1s"}, "--wait -1s: want a positive duration"},
		"an argument":              {[]string{"app"}, `check: unexpected argument "app"`},
		"no kubeconfig anywhere":   {nil, "no kubeconfig found: pass --kubeconfig FILE, set $KUBECONFIG, or run in a Pod"},
		"an unknown output format": {[]string{"-o", "table"}, `-o "table": want wide, json or yaml`},
	} {
		t.Run(name, func(t *testing.T) {
			t.Setenv("HOME", t.TempDir())
			t.Setenv("KUBECONFIG", "")
			t.Setenv("KUBERNETES_SERVICE_HOST", "")
			var stdout, stderr bytes.Buffer
			err := Check(context.Background(), tc.args, &stdout, &stderr, nil)
			if err == nil || err.Error() != tc.want {
				t.Errorf("error %q\n want %q", err, tc.want)
			}
		})
	}
}
