package patches

import "testing"

func TestInSkewWindow(t *testing.T) {
	tests := map[string]struct {
		injected, current string
		want              bool
	}{
		"the same version":                        {"v1.5.0", "v1.5.0", true},
		"the previous minor version (an upgrade)": {"v1.4.3", "v1.5.0", true},
		"the next minor version (a rollback)":     {"v1.6.0", "v1.5.2", true},
		"two minor versions behind":               {"v1.3.0", "v1.5.0", false},
		"two minor versions ahead":                {"v1.7.0", "v1.5.0", false},
		"another major version":                   {"v2.0.0", "v1.9.0", false},
		"a pre-release of the next minor version": {"v1.6.0-rc.1", "v1.5.0", true},
		"without the v prefix":                    {"1.4.0", "v1.5.0", true},
		"a development build injected":            {"dev", "v1.5.0", true},
		"a commit stamp running":                  {"v1.2.0", "0923c9c", true},
		"a malformed version is not semantic":     {"v1.04.0", "v1.9.0", true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := InSkewWindow(tc.injected, tc.current); got != tc.want {
				t.Errorf("InSkewWindow(%q, %q) = %t, want %t", tc.injected, tc.current, got, tc.want)
			}
		})
	}
}
