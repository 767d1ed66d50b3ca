package promql

import (
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
)

// files is the chart's directory of monitoring files.
var files = filepath.Join("..", "..", "charts", "singleton-webhook", "files")

// TestAlertsLoad loads files/alerts.yaml as Prometheus loads a rule file
// (promtool check rules): strict YAML, every expression parsed, every
// template of labels and annotations checked.
func TestAlertsLoad(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(files, "alerts.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	groups, errs := rulefmt.Parse(b, false, model.UTF8Validation, parser.NewParser(parser.Options{}), slog.New(slog.DiscardHandler))
	for _, err := range errs {
		t.Errorf("alerts.yaml: %v", err)
	}
	if groups == nil || len(groups.Groups) == 0 || len(groups.Groups[0].Rules) < 6 {
		t.Fatalf("alerts.yaml: want a group of at least 6 alerts, got %+v", groups)
	}
	for _, r := range groups.Groups[0].Rules {
		if !strings.Contains(r.Annotations["runbook"], "kubectl singleton check") || !strings.Contains(r.Annotations["runbook"], "SW") {
			t.Errorf("alert %s: its runbook must point at `kubectl singleton check` and a code", r.Alert)
		}
	}
}

// TestMetricsReferenced parses every expression of the alerts and of the
// dashboard and holds files/metrics.txt to the metrics they select
// (UPDATE=1 rewrites it). The product's integration suite scrapes the
// webhook for each name of that file.
func TestMetricsReferenced(t *testing.T) {
	var exprs []string
	b, err := os.ReadFile(filepath.Join(files, "alerts.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	groups, _ := rulefmt.Parse(b, false, model.UTF8Validation, parser.NewParser(parser.Options{}), slog.New(slog.DiscardHandler))
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			exprs = append(exprs, r.Expr)
		}
	}
	var dash struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	b, err = os.ReadFile(filepath.Join(files, "dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("dashboard.json: %v", err)
	}
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("dashboard panel %q has no query", p.Title)
		}
		for _, q := range p.Targets {
			exprs = append(exprs, q.Expr)
		}
	}
	p := parser.NewParser(parser.Options{})
	names := map[string]bool{}
	for _, e := range exprs {
		expr, err := p.ParseExpr(e)
		if err != nil {
			t.Errorf("%q: %v", e, err)
			continue
		}
		for _, sel := range parser.ExtractSelectors(expr) {
			for _, m := range sel {
				if m.Name == model.MetricNameLabel && m.Type == labels.MatchEqual {
					names[m.Value] = true
				}
			}
		}
	}
	var got []string
	for n := range names {
		got = append(got, n)
	}
	slices.Sort(got)
	text := "# Metrics the chart's alerts and dashboard select (written by hack/promql, UPDATE=1).\n" + strings.Join(got, "\n") + "\n"
	path := filepath.Join(files, "metrics.txt")
	if os.Getenv("UPDATE") != "" {
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil || string(want) != text {
		t.Errorf("files/metrics.txt is stale (UPDATE=1 go test ./... in hack/promql rewrites it): %v\n got %s\nwant %s", err, text, want)
	}
}
