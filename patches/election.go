package patches

import (
	appsv1 "k8s.io/api/apps/v1"
)

// ElectorOptions configures the leader-election sidecar of ModeElection.
type ElectorOptions struct{}

// applyElection implements ModeElection. The sidecar is not shipped yet, so
// the mode is refused rather than admitted without its lock.
func applyElection(d *appsv1.Deployment, _ ElectorOptions) ([]string, error) {
	return nil, &AnnotationError{Key: AnnotationMode, Value: string(ModeElection),
		Reason: `is not available in this version; use "replicas" (or remove the annotation)`}
}
