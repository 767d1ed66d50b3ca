package patches

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Names of the admission policies of policy mode; each binding has the
// name of its policy.
const (
	// MutatingPolicyName names the MutatingAdmissionPolicy that makes
	// replicas-mode Deployments singletons.
	MutatingPolicyName = "singleton-replicas"
	// ValidatingPolicyName names the ValidatingAdmissionPolicy that refuses
	// what the webhook refuses.
	ValidatingPolicyName = "singleton-replicas"
	// WarningPolicyName names the ValidatingAdmissionPolicy, bound with
	// validationActions [Warn], that reports what the mutation overrode.
	WarningPolicyName = "singleton-replicas-warnings"
)

// AdmissionPolicies do replicas mode's admission inside the API server, as
// Apply does it in the webhook: the same object for every replicas-mode
// Deployment the webhook leaves to them (see WebhookPolicyModeCondition),
// the same refusals with the same messages, and the warnings a policy can
// give.
type AdmissionPolicies struct {
	// Mutating pins replicas and strategy, records the original-* annotations
	// and adds the pod label, the scheduling gate and the Deployment's
	// LabelMode (in deny enforcement that label alone); it also strips the
	// labels and the gate of a Deployment that stopped being a singleton.
	Mutating *admissionregistrationv1.MutatingAdmissionPolicy
	// Validating refuses bad annotations and, in deny enforcement, what is
	// not a singleton as written.
	Validating *admissionregistrationv1.ValidatingAdmissionPolicy
	// Warnings fails, as a warning, where the mutation overrode replicas or
	// the strategy.
	Warnings *admissionregistrationv1.ValidatingAdmissionPolicy
}

// NewAdmissionPolicies returns the policies for the cluster defaults of p
// (the webhook's --default-mode and --default-enforcement).
func NewAdmissionPolicies(p Policy) (*AdmissionPolicies, error) {
	if _, err := ParseMode(string(p.DefaultMode), ModeReplicas); err != nil {
		return nil, fmt.Errorf("default mode: %w", err)
	}
	if _, err := ParseEnforcement(string(p.DefaultEnforcement), EnforcementMutate); err != nil {
		return nil, fmt.Errorf("default enforcement: %w", err)
	}
	return newAdmissionPolicies(p.defaultMode(), p.defaultEnforcement()), nil
}

// NewAdmissionPolicyTemplate returns the policies with mode and enforcement
// written, unchecked, where the cluster defaults go: for a template engine
// (the Helm chart) to replace with the configured values.
func NewAdmissionPolicyTemplate(mode, enforcement string) *AdmissionPolicies {
	return newAdmissionPolicies(Mode(mode), Enforcement(enforcement))
}

// newAdmissionPolicies builds the policies for the given defaults.
func newAdmissionPolicies(mode Mode, enforcement Enforcement) *AdmissionPolicies {
	fail, ignore := admissionregistrationv1.Fail, admissionregistrationv1.Ignore
	refusal, decision := refusalExpr(mode, enforcement), decisionVariables(mode, enforcement)
	return &AdmissionPolicies{
		Mutating: &admissionregistrationv1.MutatingAdmissionPolicy{
			TypeMeta:   metav1.TypeMeta{APIVersion: "admissionregistration.k8s.io/v1", Kind: "MutatingAdmissionPolicy"},
			ObjectMeta: metav1.ObjectMeta{Name: MutatingPolicyName},
			Spec: admissionregistrationv1.MutatingAdmissionPolicySpec{
				MatchConstraints: deploymentWrites(),
				MatchConditions:  []admissionregistrationv1.MatchCondition{{Name: "is-or-was-singleton", Expression: isOrWasSingletonExpr}},
				Mutations: []admissionregistrationv1.Mutation{{
					PatchType: admissionregistrationv1.PatchTypeJSONPatch,
					JSONPatch: &admissionregistrationv1.JSONPatch{Expression: inlineVariables(mutationExpr(), mutatingVariables(mode, enforcement))},
				}},
				// A singleton must never be admitted un-mutated: an error or
				// a cost limit refuses the write, as the webhook's entry does.
				FailurePolicy: &fail,
				// Another mutation after ours may change replicas again.
				ReinvocationPolicy: admissionregistrationv1.IfNeededReinvocationPolicy,
			},
		},
		Validating: &admissionregistrationv1.ValidatingAdmissionPolicy{
			TypeMeta:   metav1.TypeMeta{APIVersion: "admissionregistration.k8s.io/v1", Kind: "ValidatingAdmissionPolicy"},
			ObjectMeta: metav1.ObjectMeta{Name: ValidatingPolicyName},
			Spec: admissionregistrationv1.ValidatingAdmissionPolicySpec{
				MatchConstraints: deploymentWrites(),
				// The refusal is checked once per write, as the policy's
				// condition: the API server evaluates every validation's
				// messageExpression for each write its validations see,
				// admitted or not (k8s.io/apiserver, validating.validator),
				// so a validation with the refusal as its message would
				// evaluate it twice. Behind the condition, the validation
				// and its message run only for a write that is refused.
				MatchConditions: []admissionregistrationv1.MatchCondition{{Name: "refused", Expression: "(" + refusal + ") != ''"}},
				Validations: []admissionregistrationv1.Validation{{
					Expression:        "false",
					MessageExpression: refusal,
					Message:           "singleton: the Deployment is refused (" + ValidatingPolicyName + ")",
					// The webhook's refusals are 403 Forbidden too.
					Reason: ptrTo(metav1.StatusReasonForbidden),
				}},
				// A refusal must not be skipped because its check failed:
				// an error in the condition refuses the write too.
				FailurePolicy: &fail,
			},
		},
		Warnings: &admissionregistrationv1.ValidatingAdmissionPolicy{
			TypeMeta:   metav1.TypeMeta{APIVersion: "admissionregistration.k8s.io/v1", Kind: "ValidatingAdmissionPolicy"},
			ObjectMeta: metav1.ObjectMeta{Name: WarningPolicyName},
			Spec: admissionregistrationv1.ValidatingAdmissionPolicySpec{
				MatchConstraints: deploymentWrites(),
				// No matchCondition: the validations pass at once without
				// the trigger, and a condition would cost every singleton's
				// write one more evaluation.
				// One variable, read by both validations: evaluated once.
				Variables:   []admissionregistrationv1.Variable{variable("mutate", inlineVariables("variables.mutate", decision))},
				Validations: inlineValidations(warningValidations(), decision, "mutate"),
				// A warning must never block a write.
				FailurePolicy: &ignore,
			},
		},
	}
}

func ptrTo[T any](v T) *T { return &v }

// deploymentWrites matches what the webhook's Deployment entry matches.
func deploymentWrites() *admissionregistrationv1.MatchResources {
	return &admissionregistrationv1.MatchResources{
		ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{{
			RuleWithOperations: admissionregistrationv1.RuleWithOperations{
				Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
				Rule: admissionregistrationv1.Rule{
					APIGroups: []string{"apps"}, APIVersions: []string{"v1"}, Resources: []string{"deployments"},
					Scope: ptrTo(admissionregistrationv1.NamespacedScope),
				},
			},
		}},
	}
}

// variable is a shorthand for one named CEL expression.
func variable(name, expr string) admissionregistrationv1.Variable {
	return admissionregistrationv1.Variable{Name: name, Expression: expr}
}

// variableRef is a reference to a policy variable in a CEL expression.
var variableRef = regexp.MustCompile(`\bvariables\.([A-Za-z_][A-Za-z0-9_]*)\b`)

// inlineVariables writes every variable expr reads out in its place, in
// parentheses, and the variables those read in turn (each may read the
// ones before it, as in a policy's spec.variables), but the variables
// named in keep, which the policy declares. The policies are
// generated from named parts (vars) but carry as few variables as they can:
// the API server builds every variable of a policy for each expression it
// evaluates and finds each reference by its name, which costs more than
// reading the object again (BENCHMARKS.md, figure 3).
func inlineVariables(expr string, vars []admissionregistrationv1.Variable, keep ...string) string {
	inlined := map[string]string{}
	replace := func(e string) string {
		return variableRef.ReplaceAllStringFunc(e, func(ref string) string {
			name := variableRef.FindStringSubmatch(ref)[1]
			if slices.Contains(keep, name) {
				return ref
			}
			v, ok := inlined[name]
			if !ok {
				panic(fmt.Sprintf("patches: %q reads variables.%s, which is not before it", e, name))
			}
			return "(" + v + ")"
		})
	}
	for _, v := range vars {
		inlined[v.Name] = replace(v.Expression)
	}
	return replace(expr)
}

// inlineValidations are vs with vars but keep inlined in their expressions
// and message expressions.
func inlineValidations(vs []admissionregistrationv1.Validation, vars []admissionregistrationv1.Variable, keep ...string) []admissionregistrationv1.Validation {
	out := make([]admissionregistrationv1.Validation, len(vs))
	for i, v := range vs {
		v.Expression = inlineVariables(v.Expression, vars, keep...)
		if v.MessageExpression != "" {
			v.MessageExpression = inlineVariables(v.MessageExpression, vars, keep...)
		}
		out[i] = v
	}
	return out
}

// varAnnotationExpr is the value of an annotation, empty when absent, read
// from variables.annotations.
func varAnnotationExpr(key string) string {
	return fmt.Sprintf("variables.annotations[?%s].orValue('')", celString(key))
}

// decisionVariables decide whether a policy mutates: a replicas-mode
// singleton in mutate enforcement that the webhook does not keep. They are
// inlined (inlineVariables).
func decisionVariables(mode Mode, enforcement Enforcement) []admissionregistrationv1.Variable {
	return []admissionregistrationv1.Variable{
		variable("name", nameExpr),
		variable("annotations", annotationsExpr),
		variable("trigger", varAnnotationExpr(AnnotationSingleton)),
		variable("released", varAnnotationExpr(AnnotationReleased)),
		// Apply labels the Deployment's metadata (LabelMode) in either
		// enforcement, where it accepts the Deployment. A pod template with
		// nodeName is refused (nodeNameErrorExpr) and, as Apply leaves what
		// it refuses, is not rewritten.
		variable("label", fmt.Sprintf("variables.trigger == 'true' && variables.released != 'true' && !%s && variables.name != '' && %s == ''",
			webhookOwnedExpr(mode, varAnnotationExpr(AnnotationMode), "variables.name"), nodeNameExpr)),
		variable("mutateEnforcement", fmt.Sprintf("%s == %s",
			effectiveEnforcementExpr(enforcement, varAnnotationExpr(AnnotationEnforcement)), celString(string(EnforcementMutate)))),
		variable("mutate", "variables.label && variables.mutateEnforcement"),
	}
}

// mutatingVariables are the mutating policy's: the decision, what the
// mutation reads of the pod template, and strip.
func mutatingVariables(mode Mode, enforcement Enforcement) []admissionregistrationv1.Variable {
	return append(decisionVariables(mode, enforcement),
		variable("podLabels", podLabelsExpr),
		variable("gates", gatesExpr),
		variable("hasGate", fmt.Sprintf("variables.gates.exists(g, g.name == %s)", celString(GateOneAtATime))),
		// Apply takes the labels and the gate of a Deployment whose trigger
		// says "false" or is gone, or that `singleton-webhook release` let
		// go of; an invalid trigger is refused instead.
		variable("strip", "variables.trigger == '' || variables.trigger == 'false' || (variables.trigger == 'true' && variables.released == 'true')"),
	)
}

// refusalExpr is Apply's first refusal, in Apply's order, or the empty
// string, built from named parts that are inlined (inlineVariables). The
// reasons are the refusals' own, read from the Go rules; the checks need
// parts of the mutating policy's too.
func refusalExpr(mode Mode, enforcement Enforcement) string {
	refuse := func(key, valueExpr string, err error) string {
		return fmt.Sprintf("'annotation %s: ' + %s + ' ' + %s", key, celQuote(valueExpr), celString(reasonOf(err)))
	}
	_, triggerErr := Enabled(map[string]string{AnnotationSingleton: "-"})
	_, modeErr := ParseMode("-", ModeReplicas)
	_, enforcementErr := ParseEnforcement("-", EnforcementMutate)
	releasedErr := checkReleased(map[string]string{AnnotationReleased: "-"})
	// The key check's reason when no known key is close: CEL has no loop to
	// compute an edit distance, so the policy always lists the known keys.
	keysErr := checkKeys(map[string]string{Prefix + strings.Repeat("z", 40): ""})
	_, nameErr := Apply(&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{
		Annotations: map[string]string{AnnotationSingleton: "true"}}}, Policy{})
	accepted := []string{""}
	for _, m := range modes {
		accepted = append(accepted, string(m))
	}
	an := varAnnotationExpr
	parts := []admissionregistrationv1.Variable{
		variable("name", nameExpr),
		variable("annotations", annotationsExpr),
		variable("trigger", an(AnnotationSingleton)),
		variable("released", an(AnnotationReleased)),
		variable("mode", an(AnnotationMode)),
		variable("enforcement", an(AnnotationEnforcement)),
		variable("podLabels", podLabelsExpr),
		variable("gates", gatesExpr),
		variable("unknownKeys", fmt.Sprintf("variables.annotations.filter(k, k.startsWith(%s) && !(k in %s)).sort()",
			celString(Prefix), celList(sortedKnownKeys()))),
		variable("problems", problemsExpr()),
	}
	return inlineVariables(strings.Join([]string{
		"!(" + celString(AnnotationSingleton) + " in variables.annotations) || variables.trigger == 'false' ? ''",
		"variables.trigger != 'true' ? " + refuse(AnnotationSingleton, "variables.trigger", triggerErr),
		// Resolve: a released singleton is not one, whatever its mode.
		celString(AnnotationReleased) + " in variables.annotations && variables.released != 'true' ? " +
			refuse(AnnotationReleased, "variables.released", releasedErr),
		"variables.released == 'true' ? ''",
		"!(variables.mode in " + celList(accepted) + ") ? " + refuse(AnnotationMode, "variables.mode", modeErr),
		// The webhook checks the rest of what it keeps.
		webhookOwnedExpr(mode, "variables.mode", "variables.name") + " ? ''",
		fmt.Sprintf("variables.annotations.exists(k, k.startsWith(%s) && !(k in %s)) ? ", celString(Prefix), celList(sortedKnownKeys())) +
			"'annotation ' + variables.unknownKeys[0] + ': ' + " +
			celQuote("variables.annotations[variables.unknownKeys[0]]") + " + ' ' + " + celString(reasonOf(keysErr)),
		// generateName: the API server names the object between the
		// mutating phase, where the name was empty and the mutating
		// policy left it alone, and this one: unlabelled, it is refused.
		fmt.Sprintf("variables.name == '' || (request.operation == 'CREATE' && object.metadata.?generateName.orValue('') != '' && variables.podLabels[?%s].orValue('') != variables.name) ? %s",
			celString(LabelDeployment), celString(nameErr.Error())),
		"!(variables.enforcement in " + celList([]string{"", string(EnforcementMutate), string(EnforcementDeny)}) + ") ? " +
			refuse(AnnotationEnforcement, "variables.enforcement", enforcementErr),
		// applyReplicas refuses before either enforcement compares.
		nodeNameExpr + " != '' ? " + nodeNameErrorExpr(),
		effectiveEnforcementExpr(enforcement, "variables.enforcement") + " == " + celString(string(EnforcementDeny)) +
			" && size(variables.problems) > 0 ? " + denyMessageExpr(),
		"''",
	}, " :\n"), parts)
}
