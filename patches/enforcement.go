package patches

import (
	"fmt"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/api/equality"
)

// AnnotationEnforcement selects how a singleton is enforced: by rewriting
// the Deployment (EnforcementMutate) or by refusing one that is not a
// singleton as written (EnforcementDeny).
const AnnotationEnforcement = Prefix + "enforcement"

// Enforcement is how a singleton is enforced.
type Enforcement string

const (
	// EnforcementMutate rewrites the Deployment and warns: the default.
	EnforcementMutate Enforcement = "mutate"
	// EnforcementDeny refuses a Deployment that is not already a singleton,
	// saying what to write, and never rewrites one: for GitOps, where the
	// manifest in Git must be the object in the cluster.
	EnforcementDeny Enforcement = "deny"
)

var enforcements = []Enforcement{EnforcementMutate, EnforcementDeny}

// ParseEnforcement validates the value of AnnotationEnforcement; an empty
// value selects def, and an empty def EnforcementMutate.
func ParseEnforcement(value string, def Enforcement) (Enforcement, error) {
	if value == "" {
		if def == "" {
			def = EnforcementMutate
		}
		return def, nil
	}
	if slices.Contains(enforcements, Enforcement(value)) {
		return Enforcement(value), nil
	}
	return "", &AnnotationError{Key: AnnotationEnforcement, Value: value,
		Reason: `is not an enforcement; use "mutate" (rewrite and warn) or "deny" (refuse what is not a singleton as written)`}
}

// DenyError refuses a Deployment in EnforcementDeny: one problem per
// difference between the manifest and what the webhook would make of it,
// each saying what to write.
type DenyError struct {
	// Problems say what to change in the manifest, one sentence each.
	Problems []string
}

// Error implements error.
func (e *DenyError) Error() string {
	return fmt.Sprintf("%s is %q, so the Deployment must be a singleton as written (%d problem%s): %s",
		AnnotationEnforcement, EnforcementDeny, len(e.Problems), plural(len(e.Problems)), strings.Join(e.Problems, "; "))
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// checkAsWritten compares a Deployment with what the mutation made of it
// and returns, for every difference the user must write, what to write.
// The webhook's bookkeeping annotations are not problems: deny mode never
// writes them.
func checkAsWritten(before, after *appsv1.Deployment) []string {
	var problems []string
	if !equality.Semantic.DeepEqual(before.Spec.Replicas, after.Spec.Replicas) {
		problems = append(problems, fmt.Sprintf("spec.replicas is %s: write spec.replicas: 1 (or 0 to pause)", replicasString(before.Spec.Replicas)))
	}
	if !equality.Semantic.DeepEqual(before.Spec.Strategy, after.Spec.Strategy) {
		// The type alone: the API server defaults a RollingUpdate's
		// parameters before admission, and the message must read the same
		// from the webhook and from mutate --check.
		t := before.Spec.Strategy.Type
		if t == "" {
			t = appsv1.RollingUpdateDeploymentStrategyType
		}
		problems = append(problems, fmt.Sprintf("spec.strategy is %s: write spec.strategy: {type: Recreate}", t))
	}
	bt, at := before.Spec.Template, after.Spec.Template
	if v, ok := at.Labels[LabelDeployment]; ok && bt.Labels[LabelDeployment] != v {
		problems = append(problems, fmt.Sprintf("spec.template.metadata.labels lacks %s: %s: add it", LabelDeployment, v))
	}
	if slices.ContainsFunc(at.Spec.SchedulingGates, isOurGate) && !slices.ContainsFunc(bt.Spec.SchedulingGates, isOurGate) {
		problems = append(problems, fmt.Sprintf("spec.template.spec.schedulingGates lacks %s: add - name: %s", GateOneAtATime, GateOneAtATime))
	}
	if !slices.ContainsFunc(at.Spec.SchedulingGates, isOurGate) && slices.ContainsFunc(bt.Spec.SchedulingGates, isOurGate) {
		problems = append(problems, fmt.Sprintf("spec.template.spec.schedulingGates has %s, which only replicas mode uses: remove it", GateOneAtATime))
	}
	// Whatever else the mutation changed in the pod template is election
	// mode's sidecar, volume and environment: too much to spell out here.
	bt.Labels, at.Labels = nil, nil
	bt.Spec.SchedulingGates, at.Spec.SchedulingGates = nil, nil
	if !equality.Semantic.DeepEqual(bt, at) {
		problems = append(problems, "the pod template is not as election mode injects it (the leader-election sidecar, its volume and environment): "+
			"write the pod template that `singleton-webhook mutate --fix -f <manifest>` prints")
	}
	return problems
}
