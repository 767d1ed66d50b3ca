package patches_test

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/singleton-webhook/singleton-webhook/patches"
)

// A rollback to the previous release must refuse no write to a Deployment
// this version admitted: the previous release refuses singleton.dev/ keys
// it does not know, so every key Apply writes onto a Deployment must be one
// it knows (testdata/previous-known-keys.txt). Keys a user writes for a
// feature this version introduced are the documented exception; so is
// singleton.dev/released, which only `singleton-webhook release` writes,
// on the way out.
func TestRollbackKnowsEveryKeyWritten(t *testing.T) {
	known := previousKnownKeys(t)
	names := goldenCases(t)
	written := map[string]string{}
	for _, name := range names {
		in := readDeployment(t, filepath.Join("testdata", name+".yaml"))
		d := in.DeepCopy()
		if _, err := patches.Apply(d, readPolicy(t, filepath.Join("testdata", name+policySuffix))); err != nil {
			continue
		}
		for k := range d.Annotations {
			if _, had := in.Annotations[k]; !had && strings.HasPrefix(k, patches.Prefix) {
				written[k] = name
			}
		}
	}
	if len(written) == 0 {
		t.Fatal("no case wrote a singleton.dev/ annotation: the test sees nothing")
	}
	for k, name := range written {
		if !known[k] {
			t.Errorf("Apply writes %s (case %s), which the previous release refuses: a rollback would refuse every write to such a Deployment", k, name)
		}
	}
}

func previousKnownKeys(t *testing.T) map[string]bool {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "previous-known-keys.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	known := map[string]bool{}
	s := bufio.NewScanner(f)
	for s.Scan() {
		if l := strings.TrimSpace(s.Text()); l != "" && !strings.HasPrefix(l, "#") {
			known[l] = true
		}
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	return known
}
