package testutil

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// TestVersion is the version the product binary of the tests is stamped with.
const TestVersion = "v0.0.0-test"

// productBuild builds the binary once per test process: every test of a
// suite runs the same file.
var productBuild = sync.OnceValues(buildProduct)

// Product returns the path of the product binary, built as `make build` and
// the Dockerfile build it (CGO_ENABLED=0, -trimpath, the version stamped),
// once per test process. It lives in a temporary directory of its own.
func Product(t testing.TB) string {
	t.Helper()
	bin, err := productBuild()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

func buildProduct() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("find the module root: %w", err)
	}
	root := filepath.Dir(strings.TrimSpace(string(out)))
	dir, err := os.MkdirTemp("", "singleton-webhook-test-")
	if err != nil {
		return "", fmt.Errorf("build the product binary: %w", err)
	}
	bin := filepath.Join(dir, "singleton-webhook")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w -X main.version="+TestVersion, "-o", bin, ".")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build the product binary: %w\n%s", err, out)
	}
	return bin, nil
}
