package testutil

import (
	"path/filepath"
	"strings"
	"testing"
)

// Suffixes of the files next to a golden-test input NAME.yaml: its expected
// output and its policy.
const (
	GoldenSuffix = ".golden.yaml"
	PolicySuffix = ".policy.yaml"
)

// GoldenInputs lists the golden-test inputs in dir whose names match
// pattern (e.g. "election-*.yaml"): every match but the expectations and
// policies, in name order. Fewer than min inputs fail the test, so a wrong
// directory cannot pass as an empty suite.
func GoldenInputs(t testing.TB, dir, pattern string, min int) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, pattern))
	if err != nil {
		t.Fatalf("list golden inputs: %v", err)
	}
	var inputs []string
	for _, f := range files {
		if !strings.HasSuffix(f, GoldenSuffix) && !strings.HasSuffix(f, PolicySuffix) {
			inputs = append(inputs, f)
		}
	}
	if len(inputs) < min {
		t.Fatalf("%d golden inputs match %s in %s, want at least %d", len(inputs), pattern, dir, min)
	}
	return inputs
}
