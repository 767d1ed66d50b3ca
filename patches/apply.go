package patches

import (
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
)

// Policy holds the cluster-wide defaults an administrator sets once, through
// the webhook's flags. The zero value is valid: replicas mode by default.
type Policy struct {
	// DefaultMode applies when a Deployment has no singleton.dev/mode
	// annotation. Empty means ModeReplicas.
	DefaultMode Mode
	// Elector configures the sidecar injected in ModeElection.
	Elector ElectorOptions
	// DefaultEnforcement applies when a Deployment has no
	// singleton.dev/enforcement annotation. Empty means EnforcementMutate.
	DefaultEnforcement Enforcement
	// CheckOnly refuses every singleton that is not one as written, whatever
	// its annotation says, and rewrites none: `mutate --check` in CI.
	CheckOnly bool
	// RenewSidecar renews, in mutate mode, an election sidecar that another
	// version injected, which is otherwise kept as it is (see skew.go). Not
	// a cluster-wide setting: the webhook sets it for an UPDATE whose pod
	// template changes anyway, so the sidecar rides on a rollout that
	// happens regardless.
	RenewSidecar bool
}

// Result says what Apply did.
type Result struct {
	// Enforced is true when the Deployment carries singleton: "true".
	Enforced bool
	// Mode is the mode that was applied; empty when not enforced.
	Mode Mode
	// Warnings describe, one sentence each, every change the user did not
	// write. They are meant to be returned as admission warnings.
	Warnings []string
}

// Apply makes d a singleton according to its annotations and the policy. It
// mutates d in place (the caller owns it, typically a fresh decode) and is
// idempotent: applying it to its own output changes nothing and warns
// nothing. An *AnnotationError means the user must fix an annotation; d is
// then left unchanged.
func Apply(d *appsv1.Deployment, p Policy) (Result, error) {
	mode, enforced, err := Resolve(d.Annotations, p)
	if err != nil {
		return Result{}, err
	}
	if !enforced {
		// A Deployment that stopped being a singleton loses what only the
		// webhook's controllers act on: a gate nobody would lift any more,
		// and the labels they find it and its Pods by.
		warnings := append(stripGate(d), stripPodLabel(d)...)
		return Result{Warnings: append(warnings, stripModeLabel(d)...)}, nil
	}
	if err := checkKeys(d.Annotations); err != nil {
		return Result{}, err
	}
	if d.Name == "" {
		return Result{}, fmt.Errorf("metadata.name is empty: a singleton Deployment needs a fixed name (generateName is not supported), its Pods are grouped by it")
	}
	enforcement, err := ParseEnforcement(d.Annotations[AnnotationEnforcement], p.DefaultEnforcement)
	if err != nil {
		return Result{}, err
	}
	if p.CheckOnly || enforcement == EnforcementDeny {
		// Deny mode accepts a sidecar of any version in the skew window as
		// written: the manifest in Git must not go stale with an upgrade.
		p.RenewSidecar = false
		after := d.DeepCopy()
		if _, err := mutate(after, mode, p); err != nil {
			return Result{}, err
		}
		problems := checkAsWritten(d, after)
		if mode == ModeElection {
			problems = append(problems, checkSkew(&d.Spec.Template, p.Elector)...)
		}
		if len(problems) > 0 {
			return Result{}, &DenyError{Problems: problems}
		}
		if p.CheckOnly {
			return Result{Enforced: true, Mode: mode}, nil
		}
		// Deny mode writes LabelMode and nothing else, without a warning: a
		// manifest that is a singleton as written draws none. A label on the
		// Deployment's own metadata rolls nothing, and a GitOps tool leaves
		// it alone as a field its manifest does not set.
		applyModeLabel(d, mode)
		return Result{Enforced: true, Mode: mode}, nil
	}
	warnings, err := mutate(d, mode, p)
	if err != nil {
		return Result{}, err
	}
	res := Result{Enforced: true, Mode: mode, Warnings: warnings}
	return res, nil
}

// mutate makes d a singleton of the given mode, returning the warnings.
// On error d is unchanged.
func mutate(d *appsv1.Deployment, mode Mode, p Policy) ([]string, error) {
	var warnings []string
	var err error
	switch mode {
	case ModeReplicas:
		warnings, err = applyReplicas(d)
		if err == nil {
			warnings = append(warnings, applyGate(d)...)
			warnings = append(warnings, stripElection(d)...)
		}
	case ModeElection:
		warnings, err = applyElection(d, p.Elector, p.RenewSidecar)
		if err == nil {
			warnings = append(warnings, stripGate(d)...)
		}
	default:
		err = fmt.Errorf("mode %q has no implementation", mode)
	}
	if err != nil {
		return nil, err
	}
	warnings = append(warnings, applyPodLabel(d)...)
	return append(warnings, applyModeLabel(d, mode)...), nil
}

// Resolve reads the trigger and the mode from a Deployment's annotations:
// whether it is a singleton and in which mode, the policy's default mode
// applying when none is written. A singleton released by `singleton-webhook
// release` (AnnotationReleased) is not enforced.
func Resolve(annotations map[string]string, p Policy) (mode Mode, enforced bool, err error) {
	enforced, err = Enabled(annotations)
	if err != nil || !enforced {
		return "", false, err
	}
	if err := checkReleased(annotations); err != nil {
		return "", false, err
	}
	if Released(annotations) {
		return "", false, nil
	}
	def := p.DefaultMode
	if def == "" {
		def = ModeReplicas
	}
	mode, err = ParseMode(annotations[AnnotationMode], def)
	if err != nil {
		return "", false, err
	}
	return mode, true, nil
}

// setAnnotation writes an annotation, creating the map when needed.
func setAnnotation(d *appsv1.Deployment, key, value string) {
	if d.Annotations == nil {
		d.Annotations = map[string]string{}
	}
	d.Annotations[key] = value
}
