package patches

import (
	"slices"

	appsv1 "k8s.io/api/apps/v1"
)

// Release lets go of a singleton before the webhook leaves (an uninstall,
// or a namespace labelled out): it takes from the pod template what only
// the webhook's controllers act on, the scheduling gate GateOneAtATime
// (which nothing else would ever lift), the pod label LabelDeployment and
// the Deployment's LabelMode, and marks
// a singleton AnnotationReleased so that a webhook still installed, and its
// drift controller, do not put them back. It returns what changed, one
// sentence each; nothing when its pod template has no gate (released
// already, or in election mode).
//
// What the webhook set for the user stays: one replica and Recreate.
// Apply of the result is a no-op.
// Removing the gate changes the pod template, so the Deployment rolls once.
func Release(d *appsv1.Deployment) []string {
	if !HasGate(d) {
		return nil
	}
	var changes []string
	if on, _ := Enabled(d.Annotations); on && !Released(d.Annotations) {
		setAnnotation(d, AnnotationReleased, "true")
		changes = append(changes, "marked "+AnnotationReleased+"=true (the webhook, while still installed, no longer enforces it)")
	}
	stripGate(d)
	changes = append(changes, "removed the scheduling gate "+GateOneAtATime+" from the pod template")
	if len(stripPodLabel(d)) > 0 {
		changes = append(changes, "removed the pod label "+LabelDeployment)
	}
	if len(stripModeLabel(d)) > 0 {
		changes = append(changes, "removed the label "+LabelMode)
	}
	return changes
}

// HasGate reports whether a pod template carries GateOneAtATime.
func HasGate(d *appsv1.Deployment) bool {
	return slices.ContainsFunc(d.Spec.Template.Spec.SchedulingGates, isOurGate)
}
