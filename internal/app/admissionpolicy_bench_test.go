package app

import (
	"context"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/admission"
	plugincel "k8s.io/apiserver/pkg/admission/plugin/cel"
	"k8s.io/apiserver/pkg/admission/plugin/policy/mutating/patch"
	"k8s.io/apiserver/pkg/admission/plugin/policy/validating"
	"k8s.io/apiserver/pkg/admission/plugin/webhook/matchconditions"
	celconfig "k8s.io/apiserver/pkg/apis/cel"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/cel/environment"

	"github.com/singleton-webhook/singleton-webhook/internal/benchdata"
	"github.com/singleton-webhook/singleton-webhook/patches"
)

// BenchmarkAdmissionPolicies evaluates the policies of policy mode on the
// realistic benchmark Deployment as the API server's plugins compile and
// evaluate them (k8s.io/apiserver: composited compiler, matchConditions
// read the typed object by reflection), beside the floors of figure 3: a
// ValidatingAdmissionPolicy whose validation is `true`, and one that gives
// two constant warnings. Each iteration copies the Deployment and builds
// its admission attributes, as the API server does per request
// (sub-benchmark "copy" alone). Not part of `make bench`: figure 3 decides;
// this shows where the evaluation's time goes.
func BenchmarkAdmissionPolicies(b *testing.B) {
	ps, err := patches.NewAdmissionPolicies(patches.Policy{})
	if err != nil {
		b.Fatal(err)
	}
	scheme := runtime.NewScheme()
	if err := appsv1.AddToScheme(scheme); err != nil {
		b.Fatal(err)
	}
	gvr := appsv1.SchemeGroupVersion.WithResource("deployments")
	gvk := appsv1.SchemeGroupVersion.WithKind("Deployment")
	src := benchdata.Deployment(benchdata.RealisticContainers, benchdata.RealisticEnvs)
	src.Namespace = "bench"
	attributes := func(d *appsv1.Deployment) *admission.VersionedAttributes {
		a := admission.NewAttributesRecord(d, nil, gvk, d.Namespace, d.Name, gvr, "", admission.Create, &metav1.CreateOptions{}, false,
			&user.DefaultInfo{Name: "admin"})
		return &admission.VersionedAttributes{Attributes: a, VersionedKind: gvk, VersionedObject: admission.NewLazyObject(d)}
	}

	m := compileMutating(b, ps.Mutating)
	mutate := func(apply bool) *appsv1.Deployment {
		va := attributes(src.DeepCopy())
		ctx := m.compiler.CreateContext(context.Background())
		if r := m.matcher.Match(ctx, va, nil, nil); r.Error != nil || !r.Matches {
			b.Fatalf("the mutating policy's condition: %v, matches %t", r.Error, r.Matches)
		}
		if !apply {
			req := plugincel.CreateAdmissionRequest(va.Attributes, metav1.GroupVersionResource(gvr), metav1.GroupVersionKind(gvk))
			r, _, err := m.evaluator.ForInput(ctx, va, req, plugincel.OptionalVariableBindings{}, nil, celconfig.RuntimeCELCostBudget)
			if err != nil || r.Error != nil {
				b.Fatalf("the mutation: %v %v", err, r.Error)
			}
			return nil
		}
		got, err := patch.NewJSONPatcher(m.evaluator).Patch(ctx, patch.Request{MatchedResource: gvr, VersionedAttributes: va,
			ObjectInterfaces: admission.NewObjectInterfacesFromScheme(scheme)}, celconfig.RuntimeCELCostBudget)
		if err != nil {
			b.Fatalf("the mutation: %v", err)
		}
		return got.(*appsv1.Deployment)
	}
	mutated := mutate(true)
	if *mutated.Spec.Replicas != 1 {
		b.Fatalf("the mutating policy left %d replicas", *mutated.Spec.Replicas)
	}
	b.Run("copy", func(b *testing.B) {
		for b.Loop() {
			attributes(src.DeepCopy())
		}
	})
	b.Run("mutation CEL", func(b *testing.B) {
		for b.Loop() {
			mutate(false)
		}
	})
	b.Run("mutation with its JSON Patch", func(b *testing.B) {
		for b.Loop() {
			mutate(true)
		}
	})

	validatingPolicy := func(validations ...admissionregistrationv1.Validation) *admissionregistrationv1.ValidatingAdmissionPolicy {
		return &admissionregistrationv1.ValidatingAdmissionPolicy{Spec: admissionregistrationv1.ValidatingAdmissionPolicySpec{Validations: validations}}
	}
	for _, c := range []struct {
		name     string
		policy   *admissionregistrationv1.ValidatingAdmissionPolicy
		failures int
	}{
		{"refusing", ps.Validating, 0},
		{"warning", ps.Warnings, 2},
		{"floor, true", validatingPolicy(admissionregistrationv1.Validation{Expression: "true"}), 0},
		{"floor, 2 constant warnings", validatingPolicy(
			admissionregistrationv1.Validation{Expression: "false", Message: "first"},
			admissionregistrationv1.Validation{Expression: "false", Message: "second"}), 2},
	} {
		v := compileValidating(c.policy)
		validate := func() {
			r := v.Validate(context.Background(), gvr, attributes(mutated.DeepCopy()), nil, nil, celconfig.RuntimeCELCostBudget, nil)
			failures := 0
			for _, d := range r.Decisions {
				if d.Action != validating.ActionAdmit {
					failures++
				}
			}
			if failures != c.failures {
				b.Fatalf("%s: %+v, want %d failures", c.name, r.Decisions, c.failures)
			}
		}
		validate()
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				validate()
			}
		})
	}
}

// compiledMutating is a MutatingAdmissionPolicy of one JSON Patch mutation
// compiled as the API server's plugin compiles it.
type compiledMutating struct {
	compiler  *plugincel.CompositedCompiler
	matcher   matchconditions.Matcher
	evaluator plugincel.MutatingEvaluator
}

// compileMutating compiles p as the API server's mutating policy plugin
// does (k8s.io/apiserver/pkg/admission/plugin/policy/mutating).
func compileMutating(b *testing.B, p *admissionregistrationv1.MutatingAdmissionPolicy) compiledMutating {
	opts := plugincel.OptionalVariableDeclarations{HasAuthorizer: true}
	c := newCompositedCompiler(p.Spec.Variables, opts)
	m := compileMatcher(c, p.Spec.MatchConditions, opts)
	if m == nil {
		b.Fatal("the mutating policy has no matchCondition")
	}
	opts.HasPatchTypes = true
	e := c.CompileMutatingEvaluator(&patch.JSONPatchCondition{Expression: p.Spec.Mutations[0].JSONPatch.Expression}, opts, environment.StoredExpressions)
	return compiledMutating{compiler: c, matcher: m, evaluator: e}
}

// compileValidating compiles p as the API server's validating policy plugin
// does (k8s.io/apiserver/pkg/admission/plugin/policy/validating).
func compileValidating(p *admissionregistrationv1.ValidatingAdmissionPolicy) validating.Validator {
	opts := plugincel.OptionalVariableDeclarations{HasAuthorizer: true}
	c := newCompositedCompiler(p.Spec.Variables, opts)
	var validations, messages []plugincel.ExpressionAccessor
	for _, v := range p.Spec.Validations {
		validations = append(validations, &validating.ValidationCondition{Expression: v.Expression, Message: v.Message, Reason: v.Reason})
		if v.MessageExpression == "" {
			messages = append(messages, nil)
			continue
		}
		messages = append(messages, &validating.MessageExpressionCondition{MessageExpression: v.MessageExpression})
	}
	return validating.NewValidator(
		c.CompileCondition(validations, opts, environment.StoredExpressions),
		compileMatcher(c, p.Spec.MatchConditions, opts),
		c.CompileCondition(nil, opts, environment.StoredExpressions),
		c.CompileCondition(messages, plugincel.OptionalVariableDeclarations{}, environment.StoredExpressions),
		p.Spec.FailurePolicy, nil)
}

// newCompositedCompiler is a policy's compiler with its variables.
func newCompositedCompiler(vars []admissionregistrationv1.Variable, opts plugincel.OptionalVariableDeclarations) *plugincel.CompositedCompiler {
	c, err := plugincel.NewCompositedCompiler(environment.MustBaseEnvSet(environment.DefaultCompatibilityVersion()))
	if err != nil {
		panic(err)
	}
	named := make([]plugincel.NamedExpressionAccessor, len(vars))
	for i, v := range vars {
		named[i] = &validating.Variable{Name: v.Name, Expression: v.Expression}
	}
	c.CompileAndStoreVariables(named, opts, environment.StoredExpressions)
	return c
}

// compileMatcher compiles a policy's matchConditions, nil without any.
func compileMatcher(c *plugincel.CompositedCompiler, conditions []admissionregistrationv1.MatchCondition, opts plugincel.OptionalVariableDeclarations) matchconditions.Matcher {
	if len(conditions) == 0 {
		return nil
	}
	accessors := make([]plugincel.ExpressionAccessor, len(conditions))
	for i := range conditions {
		accessors[i] = (*matchconditions.MatchCondition)(&conditions[i])
	}
	fail := admissionregistrationv1.Fail
	return matchconditions.NewMatcher(c.CompileCondition(accessors, opts, environment.StoredExpressions), &fail, "policy", "validate", "bench")
}
