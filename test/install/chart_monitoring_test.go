//go:build integration

package install

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/singleton-webhook/singleton-webhook/internal/testenv"
)

// TestChartMonitoring checks the alerts and the dashboard: off by default,
// one value each, and rendered exactly from files/alerts.yaml and
// files/dashboard.json (which hack/promql parses and the app suite scrapes
// the webhook for).
func TestChartMonitoring(t *testing.T) {
	for _, o := range renderChart(t) {
		if k := o.GetKind(); k == "PrometheusRule" || (k == "ConfigMap" && o.GetName() == "singleton-webhook-dashboard") {
			t.Errorf("rendered by default: %s", objectKey(o))
		}
	}
	objs := renderChart(t, "--set", "metrics.prometheusRule.enabled=true", "--set", "metrics.grafanaDashboard.enabled=true")
	var alerts map[string]any
	readChartFile(t, "alerts.yaml", &alerts)
	spec, _, _ := unstructured.NestedMap(findKind(t, objs, "PrometheusRule").Object, "spec")
	if !reflect.DeepEqual(spec, alerts) {
		t.Errorf("PrometheusRule spec differs from files/alerts.yaml:\n%v\n%v", spec, alerts)
	}
	var dash, want map[string]any
	readChartFile(t, "dashboard.json", &want)
	for _, o := range objs {
		if o.GetKind() != "ConfigMap" || o.GetName() != "singleton-webhook-dashboard" {
			continue
		}
		if o.GetLabels()["grafana_dashboard"] != "1" {
			t.Errorf("dashboard ConfigMap labels %v: Grafana's sidecar looks for grafana_dashboard: \"1\"", o.GetLabels())
		}
		data, _, _ := unstructured.NestedString(o.Object, "data", "singleton-webhook.json")
		if err := json.Unmarshal([]byte(data), &dash); err != nil {
			t.Fatalf("dashboard ConfigMap: %v", err)
		}
	}
	if !reflect.DeepEqual(dash, want) {
		t.Errorf("dashboard ConfigMap differs from files/dashboard.json")
	}
}

func readChartFile(t *testing.T, name string, v any) {
	t.Helper()
	root, err := testenv.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, chartDir, "files", name))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}
