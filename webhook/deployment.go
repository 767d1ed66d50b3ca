package webhook

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"gomodules.xyz/jsonpatch/v2"
	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
	sigsjson "sigs.k8s.io/json"

	"github.com/singleton-webhook/singleton-webhook/patches"
)

// DeploymentPath is where the server serves the Deployment handler.
const DeploymentPath = "/mutate-apps-v1-deployment"

// Deployments mutates apps/v1 Deployments on CREATE and UPDATE.
type Deployments struct {
	// Policy holds the cluster-wide defaults passed to patches.Apply.
	Policy patches.Policy
	// Leases looks up the Lease an election-mode singleton elects on, to
	// warn when it is not the webhook's for that Deployment (leaseWarnings).
	// Nil looks nothing up (offline review, standalone serve).
	Leases LeaseLookup
}

var _ admission.Handler = (*Deployments)(nil)

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
	before := &appsv1.Deployment{}
	if err := sigsjson.UnmarshalCaseSensitivePreserveInts(req.Object.Raw, before); err != nil {
		return admission.Errored(http.StatusBadRequest, fmt.Errorf("decode deployment: %w", err))
	}
	d := before.DeepCopy()
	p, answer := policyFor(req, d, h.Policy)
	if answer != nil {
		return *answer
	}
	res, err := patches.Apply(d, p)
	if err != nil {
		return admission.Denied(err.Error())
	}
	if !res.Enforced && len(res.Warnings) == 0 {
		markSkipped(ctx, ReasonNotSingleton)
		return admission.Allowed("not a singleton")
	}
	if res.Enforced {
		markMode(ctx, res.Mode)
	} else {
		// No longer a singleton: what the webhook put on its pod template goes.
		markSkipped(ctx, ReasonNotSingleton)
	}
	ops, err := patchOf(req.Object.Raw, before, d)
	if err != nil {
		return admission.Errored(http.StatusInternalServerError, fmt.Errorf("compute patch: %w", err))
	}
	warnings := append(res.Warnings, h.leaseWarnings(ctx, req.Namespace, d, res)...)
	return admission.Patched("", ops...).WithWarnings(warnings...)
}

// patchOf returns the patch from raw, the Deployment as the API server sent
// it, to mutated; original is raw decoded (see patchFor).
func patchOf(raw []byte, original, mutated *appsv1.Deployment) ([]jsonpatch.Operation, error) {
	after, err := json.Marshal(mutated)
	if err != nil {
		return nil, err
	}
	before, err := json.Marshal(original)
	if err != nil {
		return nil, err
	}
	return patchFor(raw, before, after)
}
