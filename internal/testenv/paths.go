package testenv

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// ModulePath is the path of the module whose root ModuleRoot looks for.
const ModulePath = "github.com/singleton-webhook/singleton-webhook"

// WebhookManifest is the project's MutatingWebhookConfiguration, relative to
// the module root.
const WebhookManifest = "manifests/mutatingwebhook.yaml"

// AssetsEnv names the environment variable holding the directory of the
// kube-apiserver, etcd and kubectl binaries, as envtest reads it.
const AssetsEnv = "KUBEBUILDER_ASSETS"

// ModuleRoot returns the root directory of this module: the nearest parent
// of the working directory whose go.mod declares ModulePath (nested modules
// such as hack/controlplane are passed over). Tests run in their package
// directory, `make run` in the root, so both find it.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find module root: %w", err)
	}
	for {
		if declaresModule(filepath.Join(dir, "go.mod")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("find module root: no go.mod declaring %s above the working directory", ModulePath)
		}
		dir = parent
	}
}

func declaresModule(gomod string) bool {
	b, err := os.ReadFile(gomod)
	if err != nil {
		return false
	}
	s := bufio.NewScanner(bytes.NewReader(b))
	for s.Scan() {
		if f := strings.Fields(s.Text()); len(f) == 2 && f[0] == "module" {
			return strings.Trim(f[1], `"`) == ModulePath
		}
	}
	return false
}

// AssetsDir returns the directory named by KUBEBUILDER_ASSETS after checking
// that it holds kube-apiserver, etcd and kubectl. The error says how to build
// and point at them.
func AssetsDir() (string, error) {
	dir := os.Getenv(AssetsEnv)
	if dir == "" {
		return "", errors.New(AssetsEnv + " is not set: the integration tier needs kube-apiserver, etcd and kubectl; " +
			"build them with `make controlplane` and set " + AssetsEnv + "=<repo>/bin/k8s " +
			"(`make test-integration` does both)")
	}
	for _, bin := range []string{"kube-apiserver", "etcd", "kubectl"} {
		if _, err := os.Stat(filepath.Join(dir, bin)); err != nil {
			return "", fmt.Errorf("%s=%s: %w (run `make controlplane`)", AssetsEnv, dir, err)
		}
	}
	return dir, nil
}

// KubectlPath returns the kubectl built by `make controlplane`:
// <root>/bin/k8s/kubectl, or the one in KUBEBUILDER_ASSETS when the tree has
// none (assets kept elsewhere).
func KubectlPath(root string) (string, error) {
	p := filepath.Join(root, "bin", "k8s", "kubectl")
	if _, err := os.Stat(p); err == nil {
		return p, nil
	}
	dir, err := AssetsDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "kubectl"), nil
}
