package patches

import (
	"errors"
	"fmt"
	"strings"
)

// The CEL of the admission policies (admissionpolicy.go), generated from the
// constants and the refusals of this package so that the policy and Apply
// cannot drift apart: every key, value, gate and reason below is read from
// the Go rules, and the equivalence test (test/integration) runs every
// replicas-mode golden case through both.
//
// A policy cannot do three things Apply does, and leaves them to the
// webhook (webhookOwnedExpr): hash a Deployment name longer than 63
// characters into the pod label (CEL has no hash function), strip an
// injected elector (a Deployment switched from election mode), and anything
// of election mode.

// celQuote quotes a string as strconv.Quote does, cut after maxQuoted bytes
// as AnnotationError cuts it. CEL cuts code points, Go bytes: the two differ
// only for a value longer than 320 bytes that is not ASCII.
func celQuote(e string) string {
	return fmt.Sprintf(`(size(bytes(%[1]s)) > %[2]d ? strings.quote(%[1]s.substring(0, %[2]d)) + '… (' + string(size(bytes(%[1]s))) + ' bytes)' : strings.quote(%[1]s))`, e, maxQuoted)
}

// celString renders s as a CEL string literal.
func celString(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `'`, `\'`, "\n", `\n`)
	return "'" + r.Replace(s) + "'"
}

// celList renders a list of string literals.
func celList(items []string) string {
	q := make([]string, len(items))
	for i, s := range items {
		q[i] = celString(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// jsonPointer escapes a map key for a JSON Patch path (RFC 6901).
func jsonPointer(key string) string {
	return strings.ReplaceAll(strings.ReplaceAll(key, "~", "~0"), "/", "~1")
}

// reasonOf returns the Reason of the AnnotationError err, so the policy
// says exactly what the webhook says.
func reasonOf(err error) string {
	var ae *AnnotationError
	if !errors.As(err, &ae) {
		panic(fmt.Sprintf("patches: %v is not an AnnotationError", err))
	}
	return ae.Reason
}

// annotationsExpr is the Deployment's annotations, empty when it has none.
const annotationsExpr = `object.metadata.?annotations.orValue({})`

// annotationExpr is the value of an annotation, empty when absent.
func annotationExpr(key string) string {
	return fmt.Sprintf("%s[?%s].orValue('')", annotationsExpr, celString(key))
}

// nameExpr is the Deployment's name, empty when it has none (generateName).
const nameExpr = `object.metadata.?name.orValue('')`

// triggerExpr is the value of the trigger annotation, empty when absent.
var triggerExpr = annotationExpr(AnnotationSingleton)

// releasedExpr is the value of the release marker, empty when absent.
var releasedExpr = annotationExpr(AnnotationReleased)

// enforcedExpr holds when the Deployment is a singleton, as Resolve says:
// the trigger is "true" and `singleton-webhook release` has not let go of
// it.
var enforcedExpr = triggerExpr + " == 'true' && " + releasedExpr + " != 'true'"

// effectiveModeExpr is the mode Resolve selects: the mode annotation,
// whose value is the CEL expression m, else the default mode.
func effectiveModeExpr(def Mode, m string) string {
	return fmt.Sprintf("(%s == '' ? %s : %s)", m, celString(string(def)), m)
}

// effectiveEnforcementExpr is the enforcement ParseEnforcement selects from
// the enforcement annotation, whose value is the CEL expression e.
func effectiveEnforcementExpr(def Enforcement, e string) string {
	return fmt.Sprintf("(%s == '' ? %s : %s)", e, celString(string(def)), e)
}

// webhookOwnedExpr holds for the singletons the webhook keeps in policy
// mode: every mode but replicas (also an unknown mode, refused with the
// webhook's own message), names whose pod label needs a hash, and
// Deployments that still carry an injected elector to strip. mode and name
// are the CEL expressions of the mode annotation's value and of the name:
// the object's own paths where there are no variables (the webhook's
// matchCondition), a policy's variables in the policies, which evaluate
// each once per expression.
func webhookOwnedExpr(def Mode, mode, name string) string {
	return fmt.Sprintf("(%s != %s || size(%s) > %d || %s in object.spec.template.?metadata.?annotations.orValue({}))",
		effectiveModeExpr(def, mode), celString(string(ModeReplicas)), name, maxLabelValue, celString(AnnotationInjected))
}

// isOrWasSingletonExpr is the webhook's own condition
// (manifests/mutatingwebhook.yaml): a Deployment with the trigger, or one
// whose pod template still carries the label.
var isOrWasSingletonExpr = fmt.Sprintf(
	"(has(object.metadata.annotations) && %[1]s in object.metadata.annotations) || "+
		"(has(object.spec) && has(object.spec.template) && has(object.spec.template.metadata) && "+
		"has(object.spec.template.metadata.labels) && %[2]s in object.spec.template.metadata.labels)",
	celString(AnnotationSingleton), celString(LabelDeployment))

// WebhookPolicyModeCondition is the matchCondition the webhook's Deployment
// entry gains in policy mode, besides its own: it is called only for the
// singletons the policies leave to it. A released Deployment is none, in
// any mode: the mutating policy takes its gate and label away as Apply
// does, so a release needs no webhook.
func WebhookPolicyModeCondition(p Policy) string {
	return enforcedExpr + " && " + webhookOwnedExpr(p.defaultMode(), annotationExpr(AnnotationMode), nameExpr)
}

// defaultMode is the policy's default mode, ModeReplicas when empty.
func (p Policy) defaultMode() Mode {
	if p.DefaultMode == "" {
		return ModeReplicas
	}
	return p.DefaultMode
}

// defaultEnforcement is the policy's default enforcement.
func (p Policy) defaultEnforcement() Enforcement {
	if p.DefaultEnforcement == "" {
		return EnforcementMutate
	}
	return p.DefaultEnforcement
}
