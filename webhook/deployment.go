package webhook

import (
	"bytes"
	"context"
	"fmt"
	"net/http"

	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/singleton-webhook/singleton-webhook/patches"
)

// DeploymentPath is where the server serves the Deployment handler.
const DeploymentPath = "/mutate-apps-v1-deployment"

// Deployments mutates apps/v1 Deployments on CREATE and UPDATE.
type Deployments struct {
	// Policy holds the cluster-wide defaults passed to patches.Apply.
	Policy patches.Policy
}

var _ admission.Handler = (*Deployments)(nil)

// injectedMarker is the pod-template annotation key of an injection.
var injectedMarker = []byte(`"` + patches.AnnotationInjected + `"`)

// Handle implements admission.Handler.
func (h *Deployments) Handle(ctx context.Context, req admission.Request) admission.Response {
	if req.Operation != admissionv1.Create && req.Operation != admissionv1.Update {
		markSkipped(ctx, ReasonOperation)
		return admission.Allowed(fmt.Sprintf("operation %s is not mutated", req.Operation))
	}
	if req.Kind.Group != appsv1.GroupName || req.Kind.Kind != "Deployment" {
		markSkipped(ctx, ReasonKind)
		return admission.Allowed(fmt.Sprintf("kind %s is not mutated", req.Kind.String()))
	}
	v, err := decodeView(req.Object.Raw)
	if err != nil {
		return admission.Errored(http.StatusBadRequest, fmt.Errorf("decode deployment: %w", err))
	}
	mode, enforced, err := patches.Resolve(v.Metadata.Annotations, h.Policy)
	if err != nil {
		return admission.Denied(err.Error())
	}
	if !enforced {
		markSkipped(ctx, ReasonNotSingleton)
		return admission.Allowed("not a singleton")
	}
	// The pod template is decoded only when the mutation may touch it: in
	// election mode, or to strip an earlier injection (its marker is in the
	// bytes) from a Deployment that left election mode.
	withTemplate := mode == patches.ModeElection || bytes.Contains(v.rawTemplate(), injectedMarker)
	before, err := v.deployment(withTemplate)
	if err != nil {
		return admission.Errored(http.StatusBadRequest, fmt.Errorf("decode deployment: %w", err))
	}
	d := before.DeepCopy()
	res, err := patches.Apply(d, h.Policy)
	if err != nil {
		return admission.Denied(err.Error())
	}
	markMode(ctx, res.Mode)
	return admission.Patched("", patchOps(v, before, d, withTemplate)...).WithWarnings(res.Warnings...)
}
