package webhook

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
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
	before, raw, err := deploymentOf(req)
	if err != nil {
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
	ops, err := diff(raw, before, d)
	if err != nil {
		return admission.Errored(http.StatusInternalServerError, fmt.Errorf("compute patch: %w", err))
	}
	return admission.Patched("", ops...).WithWarnings(res.Warnings...)
}

// deploymentOf returns the request's Deployment, decoded, and a function
// returning the object as the API server sent it, which the diff reads only
// where the typed object cannot tell whether a path is there.
func deploymentOf(req admission.Request) (*appsv1.Deployment, func() ([]byte, error), error) {
	if d, ok := req.Object.Object.(decodedDeployment); ok {
		return d.Deployment, d.raw, nil
	}
	d := &appsv1.Deployment{}
	if err := sigsjson.UnmarshalCaseSensitivePreserveInts(req.Object.Raw, d); err != nil {
		return nil, nil, err
	}
	return d, func() ([]byte, error) { return req.Object.Raw, nil }, nil
}

// deploymentReview is an AdmissionReview whose request's object is decoded
// as a Deployment in the same pass as the review: decoding it afterwards
// from the review's raw bytes scans them twice more, once to check them and
// once to decode them, about a fifth of the handler's time on a realistic
// Deployment.
type deploymentReview struct {
	metav1.TypeMeta `json:",inline"`
	Request         *struct {
		admissionv1.AdmissionRequest `json:",inline"`
		// Object shadows AdmissionRequest.Object: it is less deeply nested.
		Object *appsv1.Deployment `json:"object,omitempty"`
	} `json:"request,omitempty"`
}

// decodeWithObject implements objectDecoder.
func (*Deployments) decodeWithObject(body []byte) (*admissionv1.AdmissionReview, runtime.Object, bool) {
	var dr deploymentReview
	if sigsjson.UnmarshalCaseSensitivePreserveInts(body, &dr) != nil || dr.Request == nil || dr.Request.Object == nil {
		return nil, nil, false
	}
	ar := &admissionv1.AdmissionReview{TypeMeta: dr.TypeMeta, Request: &dr.Request.AdmissionRequest}
	return ar, decodedDeployment{Deployment: dr.Request.Object, review: body}, true
}

// decodedDeployment is the Deployment of a deploymentReview, carried in the
// admission request's RawExtension.Object, with the review it came from.
type decodedDeployment struct {
	*appsv1.Deployment
	review []byte
}

// raw returns the object as the review holds it, decoding the review again.
func (d decodedDeployment) raw() ([]byte, error) {
	ar, f := decodeRawReview(d.review)
	if f != nil {
		return nil, errors.New(f.msg)
	}
	return ar.Request.Object.Raw, nil
}
