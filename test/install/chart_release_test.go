//go:build integration

package install

import (
	"slices"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"
)

// The pre-delete hook of `helm uninstall` renders: a Job running
// `singleton-webhook release -A` from the product image, under a
// ServiceAccount of its own bound to a ClusterRole with exactly release's
// verbs, all of them hooks deleted once it succeeded; and release.enabled
// false renders none of it. TestChartRunsInCluster runs it: `helm
// uninstall` with the Job's Pod run by the test (uninstall_test.go).
func TestChartRendersTheReleaseHook(t *testing.T) {
	objs := byKey(renderChart(t, append(chartTestValues(), "--set", "release.maxInFlight=3")...))
	hooks := map[string]string{
		"ServiceAccount " + systemNamespace + "/singleton-webhook-release": "-10",
		"ClusterRole /singleton-webhook-release":                           "-10",
		"ClusterRoleBinding /singleton-webhook-release":                    "-10",
		"Job " + systemNamespace + "/singleton-webhook-release":            "0",
	}
	for key, weight := range hooks {
		o, ok := objs[key]
		if !ok {
			t.Errorf("the chart renders no %s", key)
			continue
		}
		a := o.GetAnnotations()
		if a["helm.sh/hook"] != "pre-delete" || a["helm.sh/hook-weight"] != weight ||
			a["helm.sh/hook-delete-policy"] != "before-hook-creation,hook-succeeded" {
			t.Errorf("%s: hook annotations %v; want a pre-delete hook of weight %s, deleted before a new one and on success", key, a, weight)
		}
	}
	job := &batchv1.Job{}
	if o := objs["Job "+systemNamespace+"/singleton-webhook-release"]; o != nil {
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, job); err != nil {
			t.Fatal(err)
		}
		// It runs in the release namespace, which enforces Pod Security
		// "restricted".
		eval, err := policy.NewEvaluator(policy.DefaultChecks(), nil)
		if err != nil {
			t.Fatal(err)
		}
		lv := api.LevelVersion{Level: api.LevelRestricted, Version: api.LatestVersion()}
		tmpl := job.Spec.Template
		if res := policy.AggregateCheckResults(eval.EvaluatePod(lv, &tmpl.ObjectMeta, &tmpl.Spec)); !res.Allowed {
			t.Errorf("the release Job violates Pod Security restricted: %s", res.ForbiddenDetail())
		}
		c := job.Spec.Template.Spec.Containers[0]
		want := []string{"release", "-A", "--max-in-flight=3", "--timeout=5m"}
		if c.Image != testImage || !slices.Equal(c.Args, want) || job.Spec.Template.Spec.ServiceAccountName != "singleton-webhook-release" {
			t.Errorf("release Job runs %s %q as %s; want %s %q as singleton-webhook-release",
				c.Image, c.Args, job.Spec.Template.Spec.ServiceAccountName, testImage, want)
		}
	}
	role := &rbacv1.ClusterRole{}
	if o := objs["ClusterRole /singleton-webhook-release"]; o != nil {
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, role); err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range role.Rules {
			got = append(got, strings.Join(r.Resources, ",")+": "+strings.Join(r.Verbs, ","))
		}
		want := []string{"deployments: list,get,update", "pods: list,update"}
		if !slices.Equal(got, want) {
			t.Errorf("release ClusterRole grants %q, want exactly %q", got, want)
		}
	}

	for key := range byKey(renderChart(t, append(chartTestValues(), "--set", "release.enabled=false")...)) {
		if strings.Contains(key, "singleton-webhook-release") {
			t.Errorf("release.enabled=false still renders %s", key)
		}
	}
}
