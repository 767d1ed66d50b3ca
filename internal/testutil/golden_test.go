package testutil

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestGoldenInputsLeaveOutExpectationsAndPolicies(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"b.yaml", "a.yaml", "a.golden.yaml", "a.policy.yaml", "c.json"} {
		if err := os.WriteFile(filepath.Join(dir, f), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	got := GoldenInputs(t, dir, "*.yaml", 2)
	want := []string{filepath.Join(dir, "a.yaml"), filepath.Join(dir, "b.yaml")}
	if !slices.Equal(got, want) {
		t.Errorf("inputs %q, want %q", got, want)
	}
}
