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
		// webhook's controllers act on: a gate nobody would lift any more.
		return Result{Warnings: append(stripGate(d), stripPodLabel(d)...)}, nil
	}
	if err := checkKeys(d.Annotations); err != nil {
		return Result{}, err
	}
	res := Result{Enforced: true, Mode: mode}
	if d.Name == "" {
		return Result{}, fmt.Errorf("metadata.name is empty: a singleton Deployment needs a fixed name (generateName is not supported), its Pods are grouped by it")
	}
	switch mode {
	case ModeReplicas:
		res.Warnings, err = applyReplicas(d)
		if err == nil {
			res.Warnings = append(res.Warnings, applyGate(d)...)
			res.Warnings = append(res.Warnings, stripElection(d)...)
		}
	case ModeElection:
		res.Warnings, err = applyElection(d, p.Elector)
		if err == nil {
			res.Warnings = append(res.Warnings, stripGate(d)...)
		}
	default:
		err = fmt.Errorf("mode %q has no implementation", mode)
	}
	if err != nil {
		return Result{}, err
	}
	res.Warnings = append(res.Warnings, applyPodLabel(d)...)
	return res, nil
}

// Resolve reads the trigger and the mode from a Deployment's annotations:
// whether it is a singleton and in which mode, the policy's default mode
// applying when none is written.
func Resolve(annotations map[string]string, p Policy) (mode Mode, enforced bool, err error) {
	enforced, err = Enabled(annotations)
	if err != nil || !enforced {
		return "", false, err
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
