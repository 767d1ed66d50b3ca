package controllers

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"sigs.k8s.io/yaml"
)

// TestDefaultScopeIsTheWebhookConfiguration holds the controllers' scope
// to the namespaceSelector of every entry of the shipped webhook
// configuration: the rule lives in Scope, and the manifest says the same.
func TestDefaultScopeIsTheWebhookConfiguration(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "manifests", "mutatingwebhook.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg admissionregistrationv1.MutatingWebhookConfiguration
	if err := yaml.UnmarshalStrict(b, &cfg); err != nil {
		t.Fatalf("decode manifests/mutatingwebhook.yaml: %v", err)
	}
	want := DefaultScope("singleton-system").Selector()
	if len(cfg.Webhooks) == 0 {
		t.Fatal("no webhook entries")
	}
	for _, w := range cfg.Webhooks {
		if !equality.Semantic.DeepEqual(w.NamespaceSelector, want) {
			t.Errorf("%s: namespaceSelector %+v, the controllers' scope is %+v", w.Name, w.NamespaceSelector, want)
		}
	}
}

func TestScopeIncludes(t *testing.T) {
	s := DefaultScope("singleton-system")
	tests := map[string]struct {
		name   string
		labels map[string]string
		want   bool
	}{
		"an ordinary namespace":                        {"team-a", nil, true},
		"kube-system":                                  {"kube-system", nil, false},
		"the webhook's own namespace":                  {"singleton-system", map[string]string{NamespaceNameLabel: "singleton-system"}, false},
		"a namespace labelled out":                     {"team-b", map[string]string{OptOutLabel: OptOutValue}, false},
		"a namespace labelled with another value":      {"team-c", map[string]string{OptOutLabel: "enabled"}, true},
		"a namespace whose labels lack its name label": {"kube-system", map[string]string{"team": "x"}, false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := s.Includes(tc.name, tc.labels); got != tc.want {
				t.Errorf("Includes(%s, %v) = %t, want %t", tc.name, tc.labels, got, tc.want)
			}
		})
	}
	if !(Scope{}).Includes("kube-system", nil) {
		t.Error("the zero Scope excludes kube-system, want every namespace")
	}
	if got := DefaultScope("").Excluded; strings.Join(got, ",") != "kube-system" {
		t.Errorf("scope of an unknown namespace excludes %v, want kube-system only", got)
	}
}

func TestScopeBadInput(t *testing.T) {
	tests := map[string]struct {
		excluded []string
		optOut   string
		want     string
	}{
		"an upper-case namespace":   {excluded: []string{"Team"}, want: `namespace "Team": `},
		"an opt-out without value":  {optOut: "singleton.dev/webhook", want: `"singleton.dev/webhook": want a label key=value, e.g. singleton.dev/webhook=disabled`},
		"an opt-out, empty value":   {optOut: "singleton.dev/webhook=", want: `"singleton.dev/webhook=": want a non-empty label value, e.g. singleton.dev/webhook=disabled`},
		"an opt-out key with space": {optOut: "a b=off", want: `label key "a b": `},
		"an opt-out value too long": {optOut: "k=" + strings.Repeat("x", 64), want: `label value "` + strings.Repeat("x", 64) + `": `},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s, err := NewScope("", tc.excluded)
			if err == nil {
				_, err = s.WithOptOut(tc.optOut)
			}
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("error %v, want one starting %q", err, tc.want)
			}
		})
	}
}
