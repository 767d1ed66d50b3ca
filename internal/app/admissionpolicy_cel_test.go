package app

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/cel-go/cel"
	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/version"
	"k8s.io/apiserver/pkg/admission"
	plugincel "k8s.io/apiserver/pkg/admission/plugin/cel"
	"k8s.io/apiserver/pkg/admission/plugin/policy/mutating/patch"
	celconfig "k8s.io/apiserver/pkg/apis/cel"
	"k8s.io/apiserver/pkg/cel/environment"
	"sigs.k8s.io/yaml"

	"github.com/singleton-webhook/singleton-webhook/internal/testutil"
	"github.com/singleton-webhook/singleton-webhook/patches"
)

// The policies' CEL evaluated in-process by the API server's own libraries
// (k8s.io/apiserver: its CEL environment and its JSON Patch mutator) on
// every golden case the policies handle, against patches.Apply: the fast
// check of the rules. The objects here are untyped and undefaulted; the
// integration test (test/integration, TestPolicyEquivalence) runs the same
// cases through a real API server.

// policyCase is a golden input the policies decide, with its cluster policy.
type policyCase struct {
	name   string
	input  *appsv1.Deployment
	policy patches.Policy
}

// policyCases are the golden inputs of replicas mode (enforced in it, not
// enforced, or a replicas-* case refused) that the policies do not leave to
// the webhook.
func policyCases(t *testing.T) []policyCase {
	var cases []policyCase
	for _, f := range testutil.GoldenInputs(t, filepath.Join("..", "..", "patches", "testdata"), "*.yaml", 40) {
		c := policyCase{name: strings.TrimSuffix(filepath.Base(f), ".yaml"), input: &appsv1.Deployment{}}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := yaml.UnmarshalStrict(b, c.input); err != nil {
			t.Fatal(err)
		}
		if b, err := os.ReadFile(strings.TrimSuffix(f, ".yaml") + testutil.PolicySuffix); err == nil {
			if err := yaml.UnmarshalStrict(b, &c.policy); err != nil {
				t.Fatal(err)
			}
		}
		res, err := patches.Apply(c.input.DeepCopy(), c.policy)
		replicas := (err == nil && (res.Mode == patches.ModeReplicas || !res.Enforced)) || (err != nil && strings.HasPrefix(c.name, "replicas-"))
		webhooks := len(c.input.Name) > 63 || c.input.Spec.Template.Annotations[patches.AnnotationInjected] != ""
		if replicas && !webhooks {
			cases = append(cases, c)
		}
	}
	if len(cases) < 20 {
		t.Fatalf("%d golden cases for the policies, want at least 20", len(cases))
	}
	return cases
}

// inlineVariables replaces every variables.X in expr by X's expression.
func inlineVariables(expr string, vars []string, exprs map[string]string) string {
	for strings.Contains(expr, "variables.") {
		before := expr
		for i := len(vars) - 1; i >= 0; i-- {
			expr = strings.ReplaceAll(expr, "variables."+vars[i], "("+exprs[vars[i]]+")")
		}
		if expr == before {
			break
		}
	}
	return expr
}

func TestAdmissionPolicyCELMutatesAsApply(t *testing.T) {
	compiler, err := plugincel.NewCompositedCompiler(environment.MustBaseEnvSet(environment.DefaultCompatibilityVersion()))
	if err != nil {
		t.Fatal(err)
	}
	scheme := runtime.NewScheme()
	if err := appsv1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	gvr := appsv1.SchemeGroupVersion.WithResource("deployments")
	gvk := appsv1.SchemeGroupVersion.WithKind("Deployment")
	for _, c := range policyCases(t) {
		want := c.input.DeepCopy()
		if _, err := patches.Apply(want, c.policy); err != nil {
			continue // refused: TestAdmissionPolicyCELRefusesAsApply's case
		}
		t.Run(c.name, func(t *testing.T) {
			ps, err := patches.NewAdmissionPolicies(c.policy)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			exprs := map[string]string{}
			for _, v := range ps.Mutating.Spec.Variables {
				names, exprs[v.Name] = append(names, v.Name), v.Expression
			}
			expr := inlineVariables(ps.Mutating.Spec.Mutations[0].JSONPatch.Expression, names, exprs)
			eval := compiler.CompileMutatingEvaluator(&patch.JSONPatchCondition{Expression: expr},
				plugincel.OptionalVariableDeclarations{HasPatchTypes: true}, environment.StoredExpressions)
			d := c.input.DeepCopy()
			attrs := admission.NewAttributesRecord(d, nil, gvk, d.Namespace, d.Name, gvr, "", admission.Create, &metav1.CreateOptions{}, false, nil)
			got, err := patch.NewJSONPatcher(eval).Patch(context.Background(), patch.Request{
				MatchedResource:     gvr,
				VersionedAttributes: &admission.VersionedAttributes{Attributes: attrs, VersionedKind: gvk, VersionedObject: admission.NewLazyObject(d)},
				ObjectInterfaces:    admission.NewObjectInterfacesFromScheme(scheme),
				OptionalVariables:   plugincel.OptionalVariableBindings{},
			}, celconfig.RuntimeCELCostBudget)
			if err != nil {
				t.Fatalf("the mutating policy: %v", err)
			}
			g := got.(*appsv1.Deployment)
			if !equality.Semantic.DeepEqual(g.Annotations, want.Annotations) || !equality.Semantic.DeepEqual(g.Labels, want.Labels) ||
				!equality.Semantic.DeepEqual(g.Spec, want.Spec) {
				gy, _ := yaml.Marshal(g)
				wy, _ := yaml.Marshal(want)
				t.Errorf("the mutating policy gives\n%s\nApply gives\n%s", gy, wy)
			}
		})
	}
}

func TestAdmissionPolicyCELRefusesAsApply(t *testing.T) {
	base, err := environment.MustBaseEnvSet(environment.DefaultCompatibilityVersion()).Extend(environment.VersionedOptions{
		IntroducedVersion: version.MajorMinor(1, 0),
		EnvOptions: []cel.EnvOption{cel.Variable("object", cel.DynType), cel.Variable("request", cel.DynType),
			cel.Variable("variables", cel.MapType(cel.StringType, cel.DynType))},
	})
	if err != nil {
		t.Fatal(err)
	}
	env, err := base.Env(environment.StoredExpressions)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range policyCases(t) {
		t.Run(c.name, func(t *testing.T) {
			want := ""
			if _, err := patches.Apply(c.input.DeepCopy(), c.policy); err != nil {
				want = err.Error()
			}
			ps, err := patches.NewAdmissionPolicies(c.policy)
			if err != nil {
				t.Fatal(err)
			}
			obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(c.input)
			if err != nil {
				t.Fatal(err)
			}
			act := map[string]any{"object": obj, "request": map[string]any{"name": c.input.Name, "operation": "CREATE"}}
			eval := func(expr string) any {
				ast, iss := env.Compile(expr)
				if iss.Err() != nil {
					t.Fatalf("compile %s: %v", expr, iss.Err())
				}
				prg, err := env.Program(ast)
				if err != nil {
					t.Fatal(err)
				}
				out, _, err := prg.Eval(act)
				if err != nil {
					t.Fatalf("evaluate %s: %v", expr, err)
				}
				return out.Value()
			}
			// The validation is behind the policy's condition: it and its
			// message are evaluated only where the condition holds.
			v, refused := ps.Validating.Spec.Validations[0], ps.Validating.Spec.MatchConditions[0]
			got := ""
			if eval(refused.Expression) == true {
				if eval(v.Expression) == true {
					t.Fatalf("the refusing policy's condition holds and its validation passes")
				}
				if got = eval(v.MessageExpression).(string); got == "" {
					t.Fatalf("the refusing policy's condition holds and its message is empty")
				}
			}
			if got != want {
				t.Errorf("the refusing policy says %q, Apply %q", got, want)
			}
		})
	}
}
