package patches

import (
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
)

// LabelMode on a singleton Deployment's own metadata (never its pod
// template, so it rolls nothing) holds the mode Apply enforced, replicas or
// election. Admission writes it on every enforced singleton, in both
// enforcements (deny mode writes this one metadata label and nothing else),
// and removes it from a Deployment that stopped being one. The webhook's
// caches of Deployments select on it (LabelModeSelector), so the process
// holds the singletons only, however many Deployments the cluster has.
const LabelMode = Prefix + "mode"

// LabelModeSelector selects the Deployments that carry LabelMode: the
// singletons admission labelled.
func LabelModeSelector() labels.Selector {
	r, err := labels.NewRequirement(LabelMode, selection.Exists, nil)
	if err != nil {
		panic(fmt.Sprintf("patches: label requirement: %v", err))
	}
	return labels.NewSelector().Add(*r)
}

// Labelled reports whether a Deployment's labels carry LabelMode with the
// value of mode: then admission has nothing to add.
func Labelled(l map[string]string, mode Mode) bool {
	v, ok := l[LabelMode]
	return ok && v == string(mode)
}

// applyModeLabel labels d's metadata with LabelMode=mode.
func applyModeLabel(d *appsv1.Deployment, mode Mode) []string {
	if Labelled(d.Labels, mode) {
		return nil
	}
	if d.Labels == nil {
		d.Labels = map[string]string{}
	}
	d.Labels[LabelMode] = string(mode)
	return []string{fmt.Sprintf("singleton: labelled the Deployment %s=%s (the webhook's controllers watch singletons by it)", LabelMode, mode)}
}

// stripModeLabel removes LabelMode from d's metadata, when a Deployment
// stops being a singleton.
func stripModeLabel(d *appsv1.Deployment) []string {
	if _, ok := d.Labels[LabelMode]; !ok {
		return nil
	}
	delete(d.Labels, LabelMode)
	if len(d.Labels) == 0 {
		d.Labels = nil
	}
	return []string{fmt.Sprintf("singleton: removed the label %s (the Deployment is no longer a singleton)", LabelMode)}
}
