//go:build integration

package certmanager

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// ModulePath is the cert-manager module whose controllers and CRDs are used.
const ModulePath = "github.com/cert-manager/cert-manager"

// CRDDir returns the directory of cert-manager's CustomResourceDefinitions,
// deploy/crds in the module cache at the version go.mod requires (asked of
// `go list -m`, so it follows go.mod). The files there are plain YAML in the
// pinned version; CRDDir checks it, because in some releases they were Helm
// templates (`{{ ... }}` markers) that envtest could not install, and a
// clear error beats a YAML parse failure.
func CRDDir() (string, error) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", ModulePath).Output()
	if err != nil {
		return "", fmt.Errorf("locate module %s: %w", ModulePath, err)
	}
	dir := filepath.Join(strings.TrimSpace(string(out)), "deploy", "crds")
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		return "", fmt.Errorf("locate cert-manager CRDs in %s: no YAML files (err: %v)", dir, err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return "", fmt.Errorf("read cert-manager CRD: %w", err)
		}
		if bytes.Contains(b, []byte("{{")) {
			return "", fmt.Errorf("cert-manager CRD %s is a Helm template; render it before installing", f)
		}
	}
	return dir, nil
}
