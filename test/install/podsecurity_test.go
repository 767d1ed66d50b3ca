//go:build integration

package install

import (
	"slices"
	"testing"

	"k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"

	"github.com/singleton-webhook/singleton-webhook/internal/testenv"
)

// workloadKinds are the kinds whose objects carry a Pod template.
func workloadKinds() []string {
	return []string{"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob"}
}

// TestPodTemplatesPassRestricted evaluates every Pod template of the
// rendered install against Pod Security "restricted" at the latest version,
// with the checks the API server's PodSecurity admission runs.
func TestPodTemplatesPassRestricted(t *testing.T) {
	// No API server is needed, but the tier's rule holds: without the
	// control-plane binaries it fails rather than passes half-checked.
	if _, err := testenv.AssetsDir(); err != nil {
		t.Fatal(err)
	}
	in := renderInstall(t)
	eval, err := policy.NewEvaluator(policy.DefaultChecks(), nil)
	if err != nil {
		t.Fatalf("create pod security evaluator: %v", err)
	}
	lv := api.LevelVersion{Level: api.LevelRestricted, Version: api.LatestVersion()}
	checked := 0
	for _, o := range in.objects {
		if !slices.Contains(workloadKinds(), o.GetKind()) {
			continue
		}
		tmpl := podTemplate(t, o)
		res := policy.AggregateCheckResults(eval.EvaluatePod(lv, &tmpl.ObjectMeta, &tmpl.Spec))
		if !res.Allowed {
			t.Errorf("%s %s violates Pod Security restricted: %s", o.GetKind(), o.GetName(), res.ForbiddenDetail())
		}
		checked++
	}
	if checked == 0 {
		t.Fatal("the rendered install has no Pod template to check")
	}
	t.Logf("%d pod template(s) pass Pod Security restricted (%s)", checked, lv.Version.String())
}
