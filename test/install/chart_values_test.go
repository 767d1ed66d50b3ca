//go:build integration

package install

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// TestChartRefusesBadValues checks that a value that cannot work fails
// helm template with a message naming the value, before anything reaches a
// cluster.
func TestChartRefusesBadValues(t *testing.T) {
	tests := map[string]struct {
		set  []string
		want []string
	}{
		"no replica": {
			set:  []string{"replicas=0"},
			want: []string{"/replicas", "want 1"},
		},
		"an unknown default mode": {
			set:  []string{"defaultMode=leader"},
			want: []string{"/defaultMode", "'replicas', 'election'"},
		},
		"an unknown admission": {
			set:  []string{"admission=cel"},
			want: []string{"/admission", "'webhook', 'policy', 'both'"},
		},
		"an unknown default enforcement": {
			set:  []string{"defaultEnforcement=reject"},
			want: []string{"/defaultEnforcement", "'mutate', 'deny'"},
		},
		"a lease no longer than the renew deadline, which elect refuses": {
			set:  []string{"elector.leaseDuration=10s"},
			want: []string{"elector.renewDeadline (10s) must be at most elector.leaseDuration (10s) - 2% of it - 250ms"},
		},
		"a retry period a jittered retry would overrun": {
			set:  []string{"elector.retryPeriod=9s"},
			want: []string{"elector.renewDeadline (10s) must be greater than 1s + 1.2 x elector.retryPeriod (9s)"},
		},
		"a lease of a fraction of a second": {
			set:  []string{"elector.leaseDuration=15500ms"},
			want: []string{"elector.leaseDuration (15500ms) must be a whole number of seconds"},
		},
		"a zero retry period": {
			set:  []string{"elector.retryPeriod=0s"},
			want: []string{"elector.retryPeriod (0s) must be greater than zero"},
		},
		"a timing without a unit": {
			set:  []string{"elector.renewDeadline=10"},
			want: []string{"/elector/renewDeadline"},
		},
		"an issuer without a name": {
			set:  []string{"certManager.issuerRef.kind=ClusterIssuer"},
			want: []string{"/certManager/issuerRef", "'name' required"},
		},
		"an issuer of an unknown kind": {
			set:  []string{"certManager.issuerRef.kind=Vault", "certManager.issuerRef.name=x"},
			want: []string{"/certManager/issuerRef/kind"},
		},
		"a misspelt value": {
			set:  []string{"replica=3"},
			want: []string{"additional properties 'replica' not allowed"},
		},
		"a webhook timeout the API server refuses": {
			set:  []string{"webhook.timeoutSeconds=31"},
			want: []string{"/webhook/timeoutSeconds"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			args := []string{"template", "singleton-webhook", chartDir, "--namespace", systemNamespace}
			for _, s := range tc.set {
				args = append(args, "--set", s)
			}
			out, err := helm(t, args...)
			if err == nil {
				t.Fatalf("helm template accepted %v", tc.set)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("helm template %v said\n%s\nwithout %q", tc.set, out, w)
				}
			}
		})
	}
}

// TestChartValues checks that each value the chart offers changes what it
// says, and only that.
func TestChartValues(t *testing.T) {
	t.Run("the elector image defaults to the webhook's and can be set apart", func(t *testing.T) {
		if got := chartElectorImage(t, findKind(t, renderChart(t, chartTestValues()...), "Deployment")); got != testImage {
			t.Errorf("default elector image %q, want the webhook's %q", got, testImage)
		}
		set := append(chartTestValues(), "--set", "elector.image.repository=registry.test/elector",
			"--set", "elector.image.digest=sha256:"+strings.Repeat("a", 64))
		want := "registry.test/elector@sha256:" + strings.Repeat("a", 64)
		if got := chartElectorImage(t, findKind(t, renderChart(t, set...), "Deployment")); got != want {
			t.Errorf("elector image %q, want %q", got, want)
		}
	})
	t.Run("an existing issuer replaces the self-signed chain", func(t *testing.T) {
		objs := renderChart(t, "--set", "certManager.issuerRef.kind=ClusterIssuer", "--set", "certManager.issuerRef.name=corp-ca")
		for _, o := range objs {
			if o.GetKind() == "Issuer" || o.GetName() == "singleton-webhook-ca" {
				t.Errorf("with an issuerRef the chart still renders %s", objectKey(o))
			}
		}
		ref, _, _ := unstructured.NestedStringMap(findKind(t, objs, "Certificate").Object, "spec", "issuerRef")
		if ref["kind"] != "ClusterIssuer" || ref["name"] != "corp-ca" {
			t.Errorf("serving Certificate issuerRef %v, want ClusterIssuer corp-ca", ref)
		}
	})
	t.Run("metrics off, ServiceMonitor, no PDB", func(t *testing.T) {
		objs := renderChart(t, "--set", "metrics.enabled=false", "--set", "podDisruptionBudget.enabled=false")
		args := chartArgs(t, findKind(t, objs, "Deployment"))
		if !slices.Contains(args, "--metrics-bind-address=0") {
			t.Errorf("metrics.enabled=false: args %v", args)
		}
		for _, o := range objs {
			if o.GetKind() == "PodDisruptionBudget" || o.GetKind() == "ServiceMonitor" {
				t.Errorf("rendered %s", objectKey(o))
			}
		}
		plain := renderChart(t, "--set", "metrics.secure=false", "--set", "metrics.serviceMonitor.enabled=true")
		if args := chartArgs(t, findKind(t, plain, "Deployment")); !slices.Contains(args, "--metrics-secure=false") {
			t.Errorf("metrics.secure=false: args %v", args)
		}
		if scheme, _, _ := unstructured.NestedSlice(findKind(t, plain, "ServiceMonitor").Object, "spec", "endpoints"); fmt.Sprint(scheme) != "[map[interval:30s path:/metrics port:metrics scheme:http]]" {
			t.Errorf("metrics.secure=false: ServiceMonitor endpoints %v", scheme)
		}
		objs = renderChart(t, "--set", "metrics.serviceMonitor.enabled=true",
			"--set", "metrics.readers[0].name=prometheus", "--set", "metrics.readers[0].namespace=monitoring")
		findKind(t, objs, "ServiceMonitor")
		for _, o := range objs {
			if o.GetKind() == "ClusterRoleBinding" && o.GetName() == "singleton-webhook-metrics-reader" {
				subjects, _, _ := unstructured.NestedSlice(o.Object, "subjects")
				if fmt.Sprint(subjects) != "[map[kind:ServiceAccount name:prometheus namespace:monitoring]]" {
					t.Errorf("metrics reader binding subjects %v", subjects)
				}
				return
			}
		}
		t.Error("metrics.readers: no ClusterRoleBinding singleton-webhook-metrics-reader")
	})
	t.Run("timings, mode and replicas reach the Deployment", func(t *testing.T) {
		d := findKind(t, renderChart(t, "--set", "replicas=3", "--set", "defaultMode=election", "--set", "defaultEnforcement=deny",
			"--set", "elector.leaseDuration=1m", "--set", "elector.renewDeadline=45s", "--set", "elector.retryPeriod=5s"), "Deployment")
		args := chartArgs(t, d)
		for _, want := range []string{"--default-mode=election", "--default-enforcement=deny", "--default-lease-duration=1m", "--default-renew-deadline=45s", "--default-retry-period=5s"} {
			if !slices.Contains(args, want) {
				t.Errorf("args %v lack %s", args, want)
			}
		}
		if n, _, _ := unstructured.NestedFieldNoCopy(d.Object, "spec", "replicas"); fmt.Sprint(n) != "3" {
			t.Errorf("replicas %v, want 3", n)
		}
	})
	t.Run("another namespace is excluded and named in the certificate", func(t *testing.T) {
		out, err := helm(t, "template", "singleton-webhook", chartDir, "--namespace", "webhooks",
			"--set", "webhook.namespaceOptOut.key=example.com/singleton", "--set", "webhook.namespaceOptOut.value=off")
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"values: [kube-system, webhooks]", "- key: example.com/singleton", "values: [off]",
			"singleton-webhook.webhooks.svc", "cert-manager.io/inject-ca-from: webhooks/singleton-webhook-serving"} {
			if !strings.Contains(out, want) {
				t.Errorf("helm template --namespace webhooks lacks %q", want)
			}
		}
	})
}

func findKind(t *testing.T, objs []*unstructured.Unstructured, kind string) *unstructured.Unstructured {
	t.Helper()
	for _, o := range objs {
		if o.GetKind() == kind {
			return o
		}
	}
	t.Fatalf("no %s rendered", kind)
	return nil
}

func chartContainer(t *testing.T, d *unstructured.Unstructured) map[string]any {
	t.Helper()
	cs, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "containers")
	if len(cs) != 1 {
		t.Fatalf("Deployment has %d containers, want 1", len(cs))
	}
	return cs[0].(map[string]any)
}

func chartArgs(t *testing.T, d *unstructured.Unstructured) []string {
	t.Helper()
	args, _, _ := unstructured.NestedStringSlice(chartContainer(t, d), "args")
	return args
}

func chartElectorImage(t *testing.T, d *unstructured.Unstructured) string {
	t.Helper()
	env, _, _ := unstructured.NestedSlice(chartContainer(t, d), "env")
	for _, e := range env {
		if m := e.(map[string]any); m["name"] == "SINGLETON_ELECTOR_IMAGE" {
			return m["value"].(string)
		}
	}
	t.Fatal("no SINGLETON_ELECTOR_IMAGE in the webhook's environment")
	return ""
}
