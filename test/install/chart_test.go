//go:build integration

package install

import (
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/singleton-webhook/singleton-webhook/internal/testenv"
)

// chartDir is the chart, relative to the module root.
const chartDir = "charts/singleton-webhook"

// chartTestValues set the chart's image to testImage, as renderInstall sets
// the kustomize base's, so the two renderings can be compared.
func chartTestValues() []string {
	repo, tag, _ := strings.Cut(testImage, ":v")
	return []string{"--set", "image.repository=" + repo, "--set", "image.tag=v" + tag}
}

// helm runs the helm that `make helm` builds into bin/tools, with its
// configuration and cache in a temporary directory, from the module root.
func helm(t *testing.T, args ...string) (string, error) {
	t.Helper()
	out, err := helmCommand(t, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("helm %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// helmCommand is the command helm runs, to run in the background.
func helmCommand(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	root, err := testenv.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(root, "bin", "tools", "helm")
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("no helm at %s: run make helm", bin)
	}
	home := t.TempDir()
	cmd := exec.Command(bin, args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(),
		"HELM_CONFIG_HOME="+filepath.Join(home, "config"),
		"HELM_CACHE_HOME="+filepath.Join(home, "cache"),
		"HELM_DATA_HOME="+filepath.Join(home, "data"))
	return cmd
}

// renderChart runs helm template as a user installing into
// singleton-system would, with extra helm arguments.
func renderChart(t *testing.T, extra ...string) []*unstructured.Unstructured {
	t.Helper()
	args := append([]string{"template", "singleton-webhook", chartDir, "--namespace", systemNamespace}, extra...)
	out, err := helm(t, args...)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := decodeObjects([]byte(out))
	if err != nil {
		t.Fatalf("decode helm template: %v", err)
	}
	return objs
}

// objectKey names an object uniquely in an install.
func objectKey(o *unstructured.Unstructured) string {
	return fmt.Sprintf("%s %s/%s", o.GetKind(), o.GetNamespace(), o.GetName())
}

func byKey(objs []*unstructured.Unstructured) map[string]*unstructured.Unstructured {
	m := map[string]*unstructured.Unstructured{}
	for _, o := range objs {
		m[objectKey(o)] = o
	}
	return m
}

// TestChartMatchesKustomize keeps the chart and manifests/ one install: the
// chart with its default values (the image set as `make manifests IMG=...`
// sets it) renders exactly the objects of the kustomize base, field for
// field, except the Namespace, which Helm creates (--create-namespace) unless
// namespace.create is set; with it set, the Namespace is the base's too.
//
// Helm hooks (the release Job of `helm uninstall`) have no counterpart in
// manifests/ (the kustomize path runs the command itself, `make undeploy`):
// they are left out here (--no-hooks) and checked by
// TestChartRendersTheReleaseHook.
func TestChartMatchesKustomize(t *testing.T) {
	kustomized := byKey(renderInstall(t).objects)
	nsKey := "Namespace /" + systemNamespace
	if kustomized[nsKey] == nil {
		t.Fatalf("manifests/ has no %s", nsKey)
	}
	t.Run("default values", func(t *testing.T) {
		want := maps.Clone(kustomized)
		delete(want, nsKey)
		compareInstalls(t, byKey(renderChart(t, append(chartTestValues(), "--no-hooks")...)), want)
	})
	t.Run("namespace.create", func(t *testing.T) {
		compareInstalls(t, byKey(renderChart(t, append(chartTestValues(), "--no-hooks", "--set", "namespace.create=true")...)), kustomized)
	})
}

// compareInstalls reports objects only one side has and every field that
// differs in the objects both have.
func compareInstalls(t *testing.T, chart, kustomize map[string]*unstructured.Unstructured) {
	t.Helper()
	var keys []string
	for k := range kustomize {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		c, ok := chart[k]
		if !ok {
			t.Errorf("the chart lacks %s", k)
			continue
		}
		for _, d := range diff(k, c.Object, kustomize[k].Object) {
			t.Errorf("chart ≠ manifests/: %s", d)
		}
	}
	for k := range chart {
		if _, ok := kustomize[k]; !ok {
			t.Errorf("the chart renders %s, which manifests/ does not have", k)
		}
	}
}

// diff lists the paths where a (the chart) and b (manifests/) differ.
func diff(path string, a, b any) []string {
	switch bv := b.(type) {
	case map[string]any:
		av, ok := a.(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s: chart %v, manifests/ %v", path, a, b)}
		}
		var out []string
		for _, k := range unionKeys(av, bv) {
			out = append(out, diff(path+"."+k, av[k], bv[k])...)
		}
		return out
	case []any:
		av, ok := a.([]any)
		if !ok {
			return []string{fmt.Sprintf("%s: chart %v, manifests/ %v", path, a, b)}
		}
		if len(av) != len(bv) {
			// An item added or removed: name it rather than every shifted one.
			return append(missing(path, "only manifests/ has", bv, av), missing(path, "only the chart has", av, bv)...)
		}
		var out []string
		for i := range bv {
			out = append(out, diff(fmt.Sprintf("%s[%d]", path, i), av[i], bv[i])...)
		}
		return out
	default:
		if !reflect.DeepEqual(a, b) {
			return []string{fmt.Sprintf("%s: chart %v, manifests/ %v", path, a, b)}
		}
		return nil
	}
}

// missing lists the items of a that b lacks.
func missing(path, says string, a, b []any) []string {
	var out []string
	for _, x := range a {
		if !slices.ContainsFunc(b, func(y any) bool { return reflect.DeepEqual(x, y) }) {
			out = append(out, fmt.Sprintf("%s: %s %v", path, says, x))
		}
	}
	return out
}

func unionKeys(a, b map[string]any) []string {
	seen := map[string]bool{}
	var keys []string
	for _, m := range []map[string]any{a, b} {
		for k := range m {
			if !seen[k] {
				seen[k] = true
				keys = append(keys, k)
			}
		}
	}
	sort.Strings(keys)
	return keys
}
