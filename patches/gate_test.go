package patches

import (
	"strings"
	"testing"
)

func TestMayBeShortened(t *testing.T) {
	long := strings.Repeat("payments-reconciler-", 4)
	for v, want := range map[string]bool{
		DeploymentLabelValue(long): true,
		"api":                      false,
		"api-0123456789":           true, // a name can look shortened: it is then looked up both ways
		"api-012345678g":           false,
		"api_0123456789":           false,
		"-0123456789":              false,
	} {
		if got := MayBeShortened(v); got != want {
			t.Errorf("MayBeShortened(%q) = %t, want %t", v, got, want)
		}
	}
}
