package testenv

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestAssetsDir(t *testing.T) {
	complete := t.TempDir()
	for _, bin := range []string{"kube-apiserver", "etcd", "kubectl"} {
		if err := os.WriteFile(filepath.Join(complete, bin), nil, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	partial := t.TempDir()
	if err := os.WriteFile(filepath.Join(partial, "etcd"), nil, 0o755); err != nil {
		t.Fatal(err)
	}
	cases := map[string]struct {
		value   string
		wantErr string
	}{
		"unset fails and says how to build the binaries": {value: "", wantErr: "make controlplane"},
		"a directory without kube-apiserver fails":       {value: partial, wantErr: "kube-apiserver"},
		"a directory with all three binaries is used":    {value: complete},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Setenv(AssetsEnv, tc.value)
			got, err := AssetsDir()
			if tc.wantErr == "" {
				if err != nil || got != tc.value {
					t.Fatalf("got %q, %v; want %q", got, err, tc.value)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("got error %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestModuleRootSkipsNestedModules(t *testing.T) {
	root, err := ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	t.Chdir(filepath.Join(root, "hack", "controlplane"))
	got, err := ModuleRoot()
	if err != nil || got != root {
		t.Fatalf("from hack/controlplane: got %q, %v; want %q", got, err, root)
	}
}
