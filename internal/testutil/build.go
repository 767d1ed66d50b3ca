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
var productBuild = sync.OnceValues(func() (string, error) { return buildProduct(TestVersion) })

// stampedBuilds holds, per version, the build of ProductStamped.
var stampedBuilds sync.Map

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

// ProductStamped returns the product binary stamped with version, as a
// release of that version is built (-X main.version=version), once per
// test process and version: two stamps of the same code, for the upgrade
// and rollback tests.
func ProductStamped(t testing.TB, version string) string {
	t.Helper()
	f, _ := stampedBuilds.LoadOrStore(version, sync.OnceValues(func() (string, error) { return buildProduct(version) }))
	bin, err := f.(func() (string, error))()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

func buildProduct(version string) (string, error) {
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
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w -X main.version="+version, "-o", bin, ".")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build the product binary: %w\n%s", err, out)
	}
	return bin, nil
}
