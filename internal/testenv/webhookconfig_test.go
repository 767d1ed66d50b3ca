package testenv

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLocalWebhookConfigurationRewritesTheProjectManifest(t *testing.T) {
	root, err := ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	ca := []byte("-----BEGIN CERTIFICATE-----\n")
	c, err := LocalWebhookConfiguration(filepath.Join(root, WebhookManifest), "https://127.0.0.1:1234", ca)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"deployments.singleton.dev": "https://127.0.0.1:1234/mutate-apps-v1-deployment",
		"scale.singleton.dev":       "https://127.0.0.1:1234/mutate-apps-v1-deployment-scale",
	}
	if len(c.Webhooks) != len(want) {
		t.Fatalf("got %d webhooks, want %d", len(c.Webhooks), len(want))
	}
	for _, w := range c.Webhooks {
		if w.ClientConfig.URL == nil || *w.ClientConfig.URL != want[w.Name] {
			t.Errorf("webhook %s: URL %v, want %s", w.Name, w.ClientConfig.URL, want[w.Name])
		}
		if w.ClientConfig.Service != nil {
			t.Errorf("webhook %s: service reference kept next to the URL", w.Name)
		}
		if string(w.ClientConfig.CABundle) != string(ca) {
			t.Errorf("webhook %s: caBundle %q, want %q", w.Name, w.ClientConfig.CABundle, ca)
		}
		if len(w.MatchConditions) == 0 {
			t.Errorf("webhook %s: matchConditions lost", w.Name)
		}
	}
	if got := c.Annotations["cert-manager.io/inject-ca-from"]; got != "singleton-system/singleton-webhook-serving" {
		t.Errorf("inject-ca-from annotation: got %q", got)
	}
}

func TestLocalWebhookConfigurationRefuses(t *testing.T) {
	const header = "apiVersion: admissionregistration.k8s.io/v1\nkind: MutatingWebhookConfiguration\nmetadata: {name: x}\n"
	cases := map[string]struct {
		yaml    string
		wantErr string
	}{
		"a misspelt field": {
			yaml:    header + "webhooks:\n- name: a.b\n  failurPolicy: Fail\n  clientConfig: {service: {name: s, namespace: n, path: /p}}\n",
			wantErr: "failurPolicy",
		},
		"an entry with a URL instead of a service": {
			yaml:    header + "webhooks:\n- name: a.b\n  clientConfig: {url: https://example.com/p}\n",
			wantErr: "service reference",
		},
		"a configuration without webhooks": {
			yaml:    header,
			wantErr: "no webhooks",
		},
		"another kind": {
			yaml:    "apiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingWebhookConfiguration\nmetadata: {name: x}\n",
			wantErr: "want admissionregistration.k8s.io/v1 MutatingWebhookConfiguration",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			f := filepath.Join(t.TempDir(), "hook.yaml")
			if err := os.WriteFile(f, []byte(tc.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := LocalWebhookConfiguration(f, "https://127.0.0.1:1", nil)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("got error %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}
