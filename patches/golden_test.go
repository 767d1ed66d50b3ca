package patches_test

// Golden tests of patches.Apply, in the manner of istio's kube-inject tests.
//
// Every testdata/NAME.yaml (other than *.golden.yaml and *.policy.yaml) is a
// case: one apps/v1 Deployment, decoded strictly into the typed struct and run
// through patches.Apply. Its expectation is testdata/NAME.golden.yaml:
//
//   - on success, the mutated Deployment as YAML, followed by a comment block
//     with the result: "# enforced: true|false", "# mode: MODE" and the
//     warnings, one "# - ..." line each ("# warnings: none" when there are
//     none);
//   - on refusal, a single line "# error: MESSAGE".
//
// A case runs with the zero patches.Policy (replicas mode by default) unless
// testdata/NAME.policy.yaml exists: that file is decoded strictly into
// patches.Policy (field names as in Go, first letter lower case, e.g.
// "defaultMode: election"; elector options under "elector:").
//
// Each successful case is also run again on its own output: the second Apply
// must change nothing and warn nothing. A refused case must leave the
// Deployment as it was.
//
// UPDATE_GOLDEN=1 go test ./patches/ rewrites the golden files. A golden or
// policy file without its case fails the run. Replicas-mode cases are named
// replicas-*, election-mode cases election-*.

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"sigs.k8s.io/yaml"

	"github.com/singleton-webhook/singleton-webhook/patches"
)

const (
	goldenSuffix = ".golden.yaml"
	policySuffix = ".policy.yaml"
)

// goldenCases returns the case names of testdata, failing on stale files.
func goldenCases(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "*.yaml"))
	if err != nil {
		t.Fatalf("list testdata: %v", err)
	}
	cases := map[string]bool{}
	var companions []string
	for _, f := range files {
		switch {
		case strings.HasSuffix(f, goldenSuffix), strings.HasSuffix(f, policySuffix):
			companions = append(companions, f)
		default:
			cases[strings.TrimSuffix(filepath.Base(f), ".yaml")] = true
		}
	}
	for _, f := range companions {
		name := strings.TrimSuffix(strings.TrimSuffix(filepath.Base(f), goldenSuffix), policySuffix)
		if !cases[name] {
			t.Errorf("stale file %s: there is no testdata/%s.yaml; delete it or add the case", f, name)
		}
	}
	names := make([]string, 0, len(cases))
	for n := range cases {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func TestGolden(t *testing.T) {
	names := goldenCases(t)
	if len(names) == 0 {
		t.Fatal("no golden cases in testdata")
	}
	update := os.Getenv("UPDATE_GOLDEN") == "1"
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			in := readDeployment(t, filepath.Join("testdata", name+".yaml"))
			p := readPolicy(t, filepath.Join("testdata", name+policySuffix))
			got := runGolden(t, in, p)
			path := filepath.Join("testdata", name+goldenSuffix)
			if update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatalf("write golden: %v", err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("read golden (UPDATE_GOLDEN=1 writes it): %v", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from the result (UPDATE_GOLDEN=1 rewrites it):\n%s", path, lineDiff(string(want), string(got)))
			}
		})
	}
}

// runGolden applies the policy to in and renders the golden text; it also
// checks the idempotence of a success and the untouched input of a refusal.
func runGolden(t *testing.T, in *appsv1.Deployment, p patches.Policy) []byte {
	t.Helper()
	d := in.DeepCopy()
	res, err := patches.Apply(d, p)
	if err != nil {
		if !equality.Semantic.DeepEqual(in, d) {
			t.Errorf("a refused Apply changed the Deployment")
		}
		return []byte("# error: " + err.Error() + "\n")
	}
	out, err := yaml.Marshal(d)
	if err != nil {
		t.Fatalf("encode result: %v", err)
	}
	checkIdempotent(t, out, p)
	var b bytes.Buffer
	b.Write(out)
	fmt.Fprintf(&b, "# enforced: %t\n", res.Enforced)
	if res.Mode != "" {
		fmt.Fprintf(&b, "# mode: %s\n", res.Mode)
	}
	if len(res.Warnings) == 0 {
		b.WriteString("# warnings: none\n")
	} else {
		b.WriteString("# warnings:\n")
	}
	for _, w := range res.Warnings {
		fmt.Fprintf(&b, "# - %s\n", w)
	}
	return b.Bytes()
}

// checkIdempotent decodes the rendered output and applies the policy again.
func checkIdempotent(t *testing.T, out []byte, p patches.Policy) {
	t.Helper()
	first := &appsv1.Deployment{}
	if err := yaml.UnmarshalStrict(out, first); err != nil {
		t.Fatalf("decode result: %v", err)
	}
	second := first.DeepCopy()
	res, err := patches.Apply(second, p)
	if err != nil {
		t.Fatalf("second Apply refused its own output: %v", err)
	}
	if len(res.Warnings) != 0 {
		t.Errorf("second Apply warned: %q", res.Warnings)
	}
	if !equality.Semantic.DeepEqual(first, second) {
		again, _ := yaml.Marshal(second)
		t.Errorf("second Apply changed the Deployment:\n%s", lineDiff(string(out), string(again)))
	}
}

func readDeployment(t *testing.T, path string) *appsv1.Deployment {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read case: %v", err)
	}
	d := &appsv1.Deployment{}
	if err := yaml.UnmarshalStrict(b, d); err != nil {
		t.Fatalf("decode %s as an apps/v1 Deployment: %v", path, err)
	}
	if d.APIVersion != "apps/v1" || d.Kind != "Deployment" {
		t.Fatalf("%s: got %s %s, want apps/v1 Deployment", path, d.APIVersion, d.Kind)
	}
	return d
}

func readPolicy(t *testing.T, path string) patches.Policy {
	t.Helper()
	var p patches.Policy
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return p
	}
	if err != nil {
		t.Fatalf("read policy: %v", err)
	}
	if err := yaml.UnmarshalStrict(b, &p); err != nil {
		t.Fatalf("decode %s as a patches.Policy: %v", path, err)
	}
	return p
}

// lineDiff shows the lines of want and got that differ, with line numbers:
// enough to read a golden mismatch without an external diff tool.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	shown := 0
	for i := 0; i < max(len(w), len(g)) && shown < 40; i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			fmt.Fprintf(&b, "line %d:\n  - %s\n  + %s\n", i+1, wl, gl)
			shown++
		}
	}
	return b.String()
}
