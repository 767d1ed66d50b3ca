package webhook

import (
	"context"
	"fmt"
	"net/http"

	"gomodules.xyz/jsonpatch/v2"
	admissionv1 "k8s.io/api/admission/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
	sigsjson "sigs.k8s.io/json"

	"github.com/singleton-webhook/singleton-webhook/patches"
)

// ScalePath is where the server serves the deployments/scale handler.
const ScalePath = "/mutate-apps-v1-deployment-scale"

// ParentLookup returns the metadata of the Deployment a Scale belongs to.
// The server backs it with a metadata-only informer cache of the singleton
// Deployments (label patches.LabelMode), and the API server for the rest.
type ParentLookup func(ctx context.Context, namespace, name string) (*metav1.PartialObjectMetadata, error)

// Scales pins the scale subresource of replicas-mode singleton Deployments to
// one replica. `kubectl scale` and the HPA write through deployments/scale,
// which never reaches the Deployment handler; a Scale carries no annotations,
// so its parent is looked up.
//
// The entry is failurePolicy Ignore in the webhook configuration, so every
// answer here errs on the side of allowing: a parent that cannot be looked up
// is allowed with a warning, and the drift controller re-pins it later.
type Scales struct {
	// Policy holds the cluster-wide defaults (the default mode).
	Policy patches.Policy
	// Parent looks the owning Deployment up. Nil allows every Scale with a
	// warning (offline review has no cluster to ask).
	Parent ParentLookup
}

var _ admission.Handler = (*Scales)(nil)

// Handle implements admission.Handler.
func (h *Scales) Handle(ctx context.Context, req admission.Request) admission.Response {
	if req.Operation != admissionv1.Update {
		markSkipped(ctx, ReasonOperation)
		return admission.Allowed(fmt.Sprintf("operation %s is not mutated", req.Operation))
	}
	if req.SubResource != "scale" || req.Kind.Kind != "Scale" {
		markSkipped(ctx, ReasonKind)
		return admission.Allowed(fmt.Sprintf("%s %s/%s is not mutated", req.Kind.Kind, req.Resource.Resource, req.SubResource))
	}
	// Field names match case-sensitively, as the API server's decoder and
	// the Deployment handler's do.
	s := &autoscalingv1.Scale{}
	if err := sigsjson.UnmarshalCaseSensitivePreserveInts(req.Object.Raw, s); err != nil {
		return admission.Errored(http.StatusBadRequest, fmt.Errorf("decode scale: %w", err))
	}
	if s.Spec.Replicas <= 1 {
		markSkipped(ctx, ReasonAtMostOne)
		return admission.Allowed("at most one replica")
	}
	if h.Parent == nil {
		markSkipped(ctx, ReasonParentNotChecked)
		return admission.Allowed("parent not looked up").WithWarnings(
			"singleton: the parent Deployment was not looked up (no cluster); scale not checked")
	}
	name := req.Name
	if name == "" {
		name = s.Name
	}
	parent, err := h.Parent(ctx, req.Namespace, name)
	if err != nil {
		markSkipped(ctx, ReasonParentLookup)
		return admission.Allowed("parent lookup failed").WithWarnings(fmt.Sprintf(
			"singleton: could not look up Deployment %s/%s (%v); scale not checked", req.Namespace, name, err))
	}
	mode, enforced, err := patches.Resolve(parent.Annotations, h.Policy)
	if err != nil {
		markSkipped(ctx, ReasonParentAnnotations)
		return admission.Allowed("parent has invalid annotations").WithWarnings(
			"singleton: scale not checked: " + err.Error())
	}
	if !enforced {
		markSkipped(ctx, ReasonNotSingleton)
		return admission.Allowed("not a replicas-mode singleton")
	}
	markMode(ctx, mode)
	if mode != patches.ModeReplicas {
		markSkipped(ctx, ReasonNotReplicasMode)
		return admission.Allowed("not a replicas-mode singleton")
	}
	op := jsonpatch.NewOperation("replace", "/spec/replicas", 1)
	return admission.Patched("", op).WithWarnings(fmt.Sprintf(
		"singleton: spec.replicas forced from %d to 1 (Deployment %s is a singleton)", s.Spec.Replicas, name))
}
