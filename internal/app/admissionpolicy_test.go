package app

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/singleton-webhook/singleton-webhook/patches"
)

// generatedHeader starts every generated file of the install.
const generatedHeader = "# Generated from patches/ by internal/app: UPDATE_GOLDEN=1 go test ./internal/app/ -run AdmissionPolicyFiles\n" +
	"# rewrites it. Edit the rules in patches/, never this file.\n"

// TestAdmissionPolicyFiles keeps the install's policy files equal to what
// patches generates: the CEL is never a second copy maintained by hand.
func TestAdmissionPolicyFiles(t *testing.T) {
	policies, err := RenderAdmissionPolicies(patches.Policy{})
	if err != nil {
		t.Fatal(err)
	}
	webhookPatch, err := RenderWebhookPolicyModePatch(patches.Policy{})
	if err != nil {
		t.Fatal(err)
	}
	chart, err := RenderChartAdmissionPolicies()
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{
		"manifests/components/policy/admissionpolicies.yaml":        append([]byte(generatedHeader), policies...),
		"manifests/components/policy/webhook-policy-mode.yaml":      append([]byte(generatedHeader), webhookPatch...),
		"charts/singleton-webhook/templates/admissionpolicies.yaml": chart,
	}
	update := os.Getenv("UPDATE_GOLDEN") == "1"
	for rel, want := range files {
		path := filepath.Join("..", "..", filepath.FromSlash(rel))
		if update {
			if err := os.WriteFile(path, want, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Errorf("read %s (UPDATE_GOLDEN=1 writes it): %v", rel, err)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s is not what patches generates: UPDATE_GOLDEN=1 go test ./internal/app/ -run AdmissionPolicyFiles rewrites it", rel)
		}
	}
}

func TestRenderAdmissionPoliciesRefusesBadDefaults(t *testing.T) {
	tests := map[string]struct {
		policy patches.Policy
		want   string
	}{
		"an unknown default mode": {
			policy: patches.Policy{DefaultMode: "leader"},
			want:   `default mode: annotation singleton.dev/mode: "leader" is not a mode; use one of: replicas, election`,
		},
		"an unknown default enforcement": {
			policy: patches.Policy{DefaultEnforcement: "warn"},
			want:   `default enforcement: annotation singleton.dev/enforcement: "warn" is not an enforcement`,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := RenderAdmissionPolicies(tc.policy)
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("got %v, want an error starting %q", err, tc.want)
			}
		})
	}
}

func TestRenderAdmissionPoliciesFollowsTheDefaults(t *testing.T) {
	out, err := RenderAdmissionPolicies(patches.Policy{DefaultMode: patches.ModeElection, DefaultEnforcement: patches.EnforcementDeny})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"== '' ? 'election'", "== '' ? 'deny'"} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("the policies for election and deny defaults lack %q", want)
		}
	}
	if bytes.Contains(out, []byte("== '' ? 'replicas'")) {
		t.Errorf("the policies for an election default still default to replicas")
	}
}
