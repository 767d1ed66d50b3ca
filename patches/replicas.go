package patches

import (
	"fmt"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
)

// applyReplicas implements ModeReplicas: at most one pod, and rollouts that
// never run the old and the new pod side by side.
//
// Decisions:
//   - replicas unset counts as 1 (the API server's default) and is left
//     unset; replicas 0 is kept, so a singleton can be paused.
//   - the user's request is recorded in the original-* annotations on first
//     enforcement and again whenever a later request asks for something the
//     webhook overrides, so they always show the latest intent.
//   - a RollingUpdate's parameters are dropped: the API server refuses them
//     together with Recreate.
//   - a pod template with spec.nodeName is refused (see checkNodeName).
func applyReplicas(d *appsv1.Deployment) ([]string, error) {
	if r := d.Spec.Replicas; r != nil && *r < 0 {
		return nil, fmt.Errorf("spec.replicas is %d; it must not be negative", *r)
	}
	if err := checkNodeName(d); err != nil {
		return nil, err
	}
	var warnings []string
	if r := d.Spec.Replicas; r != nil && *r > 1 {
		setAnnotation(d, AnnotationOriginalReplicas, strconv.Itoa(int(*r)))
		warnings = append(warnings, fmt.Sprintf(
			"singleton: spec.replicas forced from %d to 1 (the request is kept in %s)",
			*r, AnnotationOriginalReplicas))
		one := int32(1)
		d.Spec.Replicas = &one
	} else if _, ok := d.Annotations[AnnotationOriginalReplicas]; !ok {
		setAnnotation(d, AnnotationOriginalReplicas, replicasString(d.Spec.Replicas))
	}

	if d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
		from := describeStrategy(d.Spec.Strategy)
		setAnnotation(d, AnnotationOriginalStrategy, from)
		warnings = append(warnings, fmt.Sprintf(
			"singleton: spec.strategy forced from %s to Recreate (a rolling update runs the old and the new pod at once)",
			from))
		d.Spec.Strategy = appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}
	} else if _, ok := d.Annotations[AnnotationOriginalStrategy]; !ok {
		setAnnotation(d, AnnotationOriginalStrategy, string(appsv1.RecreateDeploymentStrategyType))
	}
	return warnings, nil
}

// checkNodeName refuses a pod template bound to a node by spec.nodeName.
// Replicas mode gates every new Pod, and the API server refuses a Pod that
// has both nodeName and a scheduling gate: the ReplicaSet could never create
// a Pod, and with Recreate the running one is killed first. Gating is the
// guarantee, so the binding must go through the scheduler: a nodeSelector on
// the node's kubernetes.io/hostname label pins the node just as well.
func checkNodeName(d *appsv1.Deployment) error {
	node := d.Spec.Template.Spec.NodeName
	if node == "" {
		return nil
	}
	return fmt.Errorf("replicas mode: spec.template.spec.nodeName is %q: replicas mode holds every new Pod with the scheduling gate %s, "+
		"and the API server refuses a Pod that has both nodeName and a scheduling gate, so the Deployment could never create a Pod; "+
		"pin the node through the scheduler instead: remove nodeName and write spec.template.spec.nodeSelector: {kubernetes.io/hostname: %s} "+
		"(the node's kubernetes.io/hostname label, usually its name) or a node affinity, or use %s: %s",
		node, GateOneAtATime, node, AnnotationMode, ModeElection)
}

func replicasString(r *int32) string {
	if r == nil {
		return "1"
	}
	return strconv.Itoa(int(*r))
}

// describeStrategy renders a strategy compactly, for a warning and for
// AnnotationOriginalStrategy: "RollingUpdate(maxSurge=1,maxUnavailable=0)".
// An empty type is the API server's default, RollingUpdate.
func describeStrategy(s appsv1.DeploymentStrategy) string {
	t := string(s.Type)
	if t == "" {
		t = string(appsv1.RollingUpdateDeploymentStrategyType)
	}
	ru := s.RollingUpdate
	if ru == nil {
		return t
	}
	var params []string
	if ru.MaxSurge != nil {
		params = append(params, "maxSurge="+ru.MaxSurge.String())
	}
	if ru.MaxUnavailable != nil {
		params = append(params, "maxUnavailable="+ru.MaxUnavailable.String())
	}
	if len(params) == 0 {
		return t
	}
	return t + "(" + strings.Join(params, ",") + ")"
}
