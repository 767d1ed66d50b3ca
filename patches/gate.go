package patches

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

// The pod-template side of the at-most-one guarantee of ModeReplicas.
//
// A Deployment replaces a deleted or evicted Pod at once, while the old one
// is still Terminating; a StatefulSet waits. To give a replicas-mode
// Deployment StatefulSet semantics, every Pod of it is created with the
// scheduling gate GateOneAtATime, which keeps it Pending (unscheduled, no
// container started anywhere) until the webhook's gate controller removes
// the gate, once no other Pod of the same Deployment is alive. LabelDeployment
// groups the Pods of one Deployment for that controller, in both modes.
const (
	// GateOneAtATime is the scheduling gate of replicas-mode Pods.
	GateOneAtATime = Prefix + "one-at-a-time"
	// LabelDeployment on a singleton's pod template names its Deployment
	// (see DeploymentLabelValue). The webhook's controllers watch only Pods
	// that carry it.
	LabelDeployment = Prefix + "deployment"
)

// maxLabelValue is the longest label value the API server accepts.
const maxLabelValue = 63

// DeploymentLabelValue is the value of LabelDeployment for a Deployment
// name: the name itself when it fits in a label value, else a prefix of it
// and a hash of the whole name, so distinct Deployments get distinct values.
func DeploymentLabelValue(name string) string {
	if len(name) <= maxLabelValue {
		return name
	}
	sum := sha256.Sum256([]byte(name))
	h := hex.EncodeToString(sum[:])[:labelHashLength]
	prefix := name[:maxLabelValue-len(h)-1]
	// A label value must end with an alphanumeric character.
	for prefix != "" && !isAlnum(prefix[len(prefix)-1]) {
		prefix = prefix[:len(prefix)-1]
	}
	return prefix + "-" + h
}

// labelHashLength is the length of the hash that ends a shortened
// DeploymentLabelValue, in lowercase hexadecimal digits.
const labelHashLength = 10

// MayBeShortened reports whether a LabelDeployment value may be
// DeploymentLabelValue of a name longer than itself: it ends in a dash and
// a hash. Any other value is the Deployment's name.
func MayBeShortened(v string) bool {
	if len(v) < labelHashLength+2 || v[len(v)-labelHashLength-1] != '-' {
		return false
	}
	return strings.Trim(v[len(v)-labelHashLength:], "0123456789abcdef") == ""
}

func isAlnum(b byte) bool {
	return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9'
}

// applyPodLabel labels the pod template with LabelDeployment.
func applyPodLabel(d *appsv1.Deployment) []string {
	want := DeploymentLabelValue(d.Name)
	t := &d.Spec.Template
	if got, ok := t.Labels[LabelDeployment]; ok && got == want {
		return nil
	}
	if t.Labels == nil {
		t.Labels = map[string]string{}
	}
	t.Labels[LabelDeployment] = want
	return []string{fmt.Sprintf("singleton: pod template labelled %s=%s (the webhook's controllers find the Pods of this singleton by it)", LabelDeployment, want)}
}

// applyGate adds GateOneAtATime to the pod template.
func applyGate(d *appsv1.Deployment) []string {
	s := &d.Spec.Template.Spec
	if slices.ContainsFunc(s.SchedulingGates, isOurGate) {
		return nil
	}
	s.SchedulingGates = append(s.SchedulingGates, corev1.PodSchedulingGate{Name: GateOneAtATime})
	return []string{fmt.Sprintf("singleton: pod template gains the scheduling gate %s (a new Pod starts only once the previous one is gone, also on delete, eviction and drain)", GateOneAtATime)}
}

// stripGate removes GateOneAtATime from the pod template, when a Deployment
// leaves replicas mode.
func stripGate(d *appsv1.Deployment) []string {
	s := &d.Spec.Template.Spec
	if !slices.ContainsFunc(s.SchedulingGates, isOurGate) {
		return nil
	}
	s.SchedulingGates = slices.DeleteFunc(s.SchedulingGates, isOurGate)
	if len(s.SchedulingGates) == 0 {
		s.SchedulingGates = nil
	}
	return []string{fmt.Sprintf("singleton: removed the scheduling gate %s (the Deployment is no longer in replicas mode)", GateOneAtATime)}
}

// stripPodLabel removes LabelDeployment from the pod template, when a
// Deployment stops being a singleton.
func stripPodLabel(d *appsv1.Deployment) []string {
	t := &d.Spec.Template
	if _, ok := t.Labels[LabelDeployment]; !ok {
		return nil
	}
	delete(t.Labels, LabelDeployment)
	if len(t.Labels) == 0 {
		t.Labels = nil
	}
	return []string{fmt.Sprintf("singleton: removed the pod label %s (the Deployment is no longer a singleton)", LabelDeployment)}
}

func isOurGate(g corev1.PodSchedulingGate) bool { return g.Name == GateOneAtATime }
