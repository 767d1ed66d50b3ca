package app

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// An upgrade rolls nothing: what `mutate` of a build stamped A writes is
// what the same code stamped B makes of it, byte for byte, with no warning,
// both ways (upgrade and rollback); and B's `mutate --check` (deny mode)
// accepts A's output as written. The examples hold a replicas-mode and an
// election-mode singleton.
func TestMutateOutputIsAFixedPointOfTheNextVersion(t *testing.T) {
	var in bytes.Buffer
	for _, f := range []string{"replicas.yaml", "election.yaml"} {
		b, err := os.ReadFile(filepath.Join("..", "..", "examples", f))
		if err != nil {
			t.Fatal(err)
		}
		in.WriteString("---\n")
		in.Write(b)
	}
	mutate := func(version string, input []byte, args ...string) (string, string) {
		t.Helper()
		var out, errOut bytes.Buffer
		err := Mutate(context.Background(), version, append([]string{"-f", "-"}, args...), bytes.NewReader(input), &out, &errOut)
		if err != nil {
			t.Fatalf("mutate stamped %s: %v\n%s", version, err, errOut.String())
		}
		return out.String(), errOut.String()
	}
	for _, tc := range []struct{ a, b string }{{"v1.4.0", "v1.5.0"}, {"v1.5.0", "v1.4.0"}} {
		first, _ := mutate(tc.a, in.Bytes())
		if !strings.Contains(first, "singleton.dev/injected: "+tc.a) || !strings.Contains(first, "singleton-webhook:"+tc.a) {
			t.Fatalf("mutate stamped %s did not inject its own version:\n%s", tc.a, first)
		}
		second, warnings := mutate(tc.b, []byte(first))
		if second != first {
			t.Errorf("%s → %s changed the output:\n%s", tc.a, tc.b, lineDiff(first, second))
		}
		if strings.Contains(warnings, "Warning:") {
			t.Errorf("%s → %s warned: %s", tc.a, tc.b, warnings)
		}
		deny := strings.ReplaceAll(first, "singleton.dev/mode: election", "singleton.dev/mode: election\n    singleton.dev/enforcement: deny")
		if deny == first {
			t.Fatal("the election example has no singleton.dev/mode: election to add deny mode to")
		}
		mutate(tc.b, []byte(deny), "--check")
	}
}

// lineDiff lists the lines of want and got that differ.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	for i := 0; i < max(len(w), len(g)); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			b.WriteString("- " + wl + "\n+ " + gl + "\n")
		}
	}
	return b.String()
}
