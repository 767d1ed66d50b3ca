//go:build integration

package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/singleton-webhook/singleton-webhook/internal/testenv"
	"github.com/singleton-webhook/singleton-webhook/internal/testutil"
	"github.com/singleton-webhook/singleton-webhook/patches"
)

// webhookOwnedCases are the replicas-mode golden cases the policies leave to
// the webhook: a name too long for the pod label without a hash, and an
// elector to strip. Every other replicas-mode case is the policies' alone.
var webhookOwnedCases = map[string]bool{
	"replicas-long-name":            true,
	"election-switched-to-replicas": true,
}

// goldenCase is one replicas-mode input of patches/testdata.
type goldenCase struct {
	name   string
	input  *appsv1.Deployment
	policy patches.Policy
}

// replicasModeCases reads the golden inputs whose outcome is replicas
// mode's: enforced in replicas mode, not enforced (the gate and the label
// taken away), or a replicas-* case refused. They are grouped by the
// cluster policy they run under.
func replicasModeCases(t *testing.T, root string) map[string][]goldenCase {
	t.Helper()
	groups := map[string][]goldenCase{}
	for _, f := range testutil.GoldenInputs(t, filepath.Join(root, "patches", "testdata"), "*.yaml", 40) {
		name := strings.TrimSuffix(filepath.Base(f), ".yaml")
		c := goldenCase{name: name, input: &appsv1.Deployment{}}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := yaml.UnmarshalStrict(b, c.input); err != nil {
			t.Fatalf("decode %s: %v", f, err)
		}
		key := ""
		if b, err := os.ReadFile(strings.TrimSuffix(f, ".yaml") + testutil.PolicySuffix); err == nil {
			if err := yaml.UnmarshalStrict(b, &c.policy); err != nil {
				t.Fatalf("decode the policy of %s: %v", f, err)
			}
			key = fmt.Sprintf("%s-%s", c.policy.DefaultMode, c.policy.DefaultEnforcement)
		}
		res, err := patches.Apply(c.input.DeepCopy(), c.policy)
		if (err == nil && (res.Mode == patches.ModeReplicas || !res.Enforced)) || (err != nil && strings.HasPrefix(name, "replicas-")) {
			groups[key] = append(groups[key], c)
		}
	}
	return groups
}

// TestPolicyEquivalence feeds every replicas-mode golden case through the
// API server with the policy-mode install (server-side dry-run create) and
// through patches.Apply: the objects must be equal, the refusals carry the
// same message. Both sides are defaulted by the same API server: the input
// is dry-run created where no admission applies, Apply runs on that, and its
// output is dry-run created there again. First with the webhook stopped: the
// policies' cases must not need it, the webhook's cases must be refused,
// never admitted un-mutated. Then with the webhook up, for all.
func TestPolicyEquivalence(t *testing.T) {
	groups := replicasModeCases(t, mustRoot(t))
	keys := make([]string, 0, len(groups))
	for k := range groups {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	total := 0
	for _, key := range keys {
		cases := groups[key]
		total += len(cases)
		t.Run("policy "+key, func(t *testing.T) {
			env := testenv.Start(t, testenv.Options{SkipWebhookConfiguration: true})
			p := cases[0].policy
			pi := newPolicyInstall(t, env, p)
			pi.installPolicies(t, env)
			pi.narrowWebhook(t, env)
			hook := env.StartWebhook(t, testenv.WebhookOptions{Policy: p})
			baseline := newNamespace(t, env)
			optOut(t, env, baseline)
			bound := newNamespace(t, env)
			waitPoliciesActive(t, env, bound)
			hook.Stop(t)
			for _, c := range cases {
				t.Run("webhook down/"+c.name, func(t *testing.T) { checkEquivalent(t, env, c, baseline, bound, false) })
			}
			hook.Start(t)
			for _, c := range cases {
				t.Run("webhook up/"+c.name, func(t *testing.T) { checkEquivalent(t, env, c, baseline, bound, true) })
			}
		})
	}
	if total < 20 {
		t.Errorf("%d replicas-mode golden cases, want at least 20: the selection lost cases", total)
	}
}

func mustRoot(t *testing.T) string {
	t.Helper()
	root, err := testenv.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// optOut labels a namespace so that neither the webhook nor the policies
// apply in it.
func optOut(t *testing.T, env *testenv.Env, ns string) {
	t.Helper()
	patch := []byte(`{"metadata":{"labels":{"singleton.dev/webhook":"disabled"}}}`)
	if _, err := env.Clientset.CoreV1().Namespaces().Patch(ctxFor(t), ns, "application/merge-patch+json", patch, metav1.PatchOptions{}); err != nil {
		t.Fatalf("opt namespace %s out: %v", ns, err)
	}
}

// inNamespace returns a copy of d in namespace ns.
func inNamespace(d *appsv1.Deployment, ns string) *appsv1.Deployment {
	d = d.DeepCopy()
	d.Namespace = ns
	return d
}

func checkEquivalent(t *testing.T, env *testenv.Env, c goldenCase, baseline, bound string, webhookUp bool) {
	defaulted, err := dryRunCreate(t, env.Clientset, inNamespace(c.input, baseline))
	if err != nil {
		t.Fatalf("the API server refuses the input where no admission applies: %v", err)
	}
	defaulted.Name, defaulted.GenerateName = c.input.Name, c.input.GenerateName
	res, applyErr := patches.Apply(defaulted, c.policy)

	cs, warned := warningClient(t, env)
	got, gotErr := dryRunCreate(t, cs, inNamespace(c.input, bound))
	owned := webhookOwnedCases[c.name]
	switch {
	case owned && !webhookUp:
		if gotErr == nil || !strings.Contains(gotErr.Error(), "failed calling webhook") {
			t.Fatalf("with the webhook down, got %v; want a refusal for failing to call it (the policies leave this case to the webhook)", gotErr)
		}
		return
	case applyErr != nil:
		by := "ValidatingAdmissionPolicy '" + patches.ValidatingPolicyName + "'"
		if owned {
			by = `admission webhook "deployments.singleton.dev" denied`
		}
		if gotErr == nil || !strings.HasSuffix(gotErr.Error(), ": "+applyErr.Error()) || !strings.Contains(gotErr.Error(), by) {
			t.Fatalf("got %v;\nwant a refusal by %s ending in %q", gotErr, by, applyErr.Error())
		}
		return
	case gotErr != nil:
		t.Fatalf("refused: %v; Apply admits it", gotErr)
	}
	want, err := dryRunCreate(t, env.Clientset, inNamespace(defaulted, baseline))
	if err != nil {
		t.Fatalf("the API server refuses Apply's output: %v", err)
	}
	compareMutated(t, want, got)
	compareWarnings(t, c.input, res, warned.list, owned)
}

// compareMutated compares what admission decides: the labels and
// annotations, and the whole spec.
func compareMutated(t *testing.T, want, got *appsv1.Deployment) {
	t.Helper()
	if !equality.Semantic.DeepEqual(want.Annotations, got.Annotations) {
		t.Errorf("annotations: Apply %v, policy %v", want.Annotations, got.Annotations)
	}
	if !equality.Semantic.DeepEqual(want.Labels, got.Labels) {
		t.Errorf("labels: Apply %v, policy %v", want.Labels, got.Labels)
	}
	if !equality.Semantic.DeepEqual(want.Spec, got.Spec) {
		w, _ := yaml.Marshal(want.Spec)
		g, _ := yaml.Marshal(got.Spec)
		t.Errorf("spec differs:\nApply:\n%s\npolicy:\n%s", w, g)
	}
}

// compareWarnings checks the policy path's warnings against Apply's: the
// webhook's own where it decided, else the replicas and strategy overrides
// as the warnings policy words them. A policy cannot see what the request
// held before the mutation, so it reads the overrides from the original-*
// annotations: a CREATE whose manifest already records an override gets its
// warning again (README: what a policy cluster gives up), and a Deployment
// the webhook stripped of its elector gets the policy's warnings besides the
// webhook's. The API server's own warnings are not admission's.
func compareWarnings(t *testing.T, input *appsv1.Deployment, res patches.Result, got []string, owned bool) {
	t.Helper()
	if runes := len([]rune(strings.Join(got, ""))); runes > warningBudget-512 {
		// The API server keeps 4 KiB of warnings per response; its own (on
		// duplicate port names, say) came first and may have taken the room.
		t.Logf("not comparing warnings: the API server's own took %d of its %d characters", runes, warningBudget)
		return
	}
	applied := res.Warnings
	var want []string
	forced := map[string]bool{}
	policyWarns := !owned || input.Spec.Template.Annotations[patches.AnnotationInjected] != ""
	for _, w := range applied {
		if owned {
			want = append(want, w)
		}
		for _, p := range []string{"singleton: spec.replicas forced", "singleton: spec.strategy forced"} {
			if strings.HasPrefix(w, p) && policyWarns {
				forced[p] = true
				want = append(want, policyWarning(w))
			}
		}
	}
	if s := input.Annotations[patches.AnnotationOriginalStrategy]; res.Enforced && policyWarns && s != "" && s != "Recreate" && !forced["singleton: spec.strategy forced"] {
		want = append(want, policyWarning("singleton: spec.strategy forced from "+s+" to Recreate (a rolling update runs the old and the new pod at once)"))
	}
	var admission []string
	for _, w := range got {
		if strings.HasPrefix(w, "singleton: ") || strings.HasPrefix(w, "Validation failed for ValidatingAdmissionPolicy") {
			admission = append(admission, w)
		}
	}
	sort.Strings(want)
	sort.Strings(admission)
	if !slices.Equal(want, admission) {
		t.Errorf("warnings:\n got %q\nwant %q", admission, want)
	}
}

// warningBudget is how many characters of warnings the API server returns
// with one response (k8s.io/apiserver/pkg/endpoints/filters/warning.go).
const warningBudget = 4 * 1024

// bigDeployment is a replicas-mode singleton with n containers.
func bigDeployment(ns, name string, n int) *appsv1.Deployment {
	d := probe(ns, name, nil)
	d.Spec.Template.Spec.Containers = nil
	for i := range n {
		d.Spec.Template.Spec.Containers = append(d.Spec.Template.Spec.Containers, corev1.Container{
			Name: fmt.Sprintf("c%03d", i), Image: "registry.k8s.io/pause:3.10",
			Env: []corev1.EnvVar{{Name: "INDEX", Value: fmt.Sprint(i)}},
		})
	}
	return d
}
