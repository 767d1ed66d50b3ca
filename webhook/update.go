package webhook

import (
	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
	sigsjson "sigs.k8s.io/json"

	"github.com/singleton-webhook/singleton-webhook/patches"
)

// policyFor returns the policy that applies to the request's Deployment d,
// a copy the handler mutates: for an UPDATE, the stored object (OldObject)
// decides whether the change is allowed at all (patches.CheckUpdate: a
// refusal is the user's) and whether an older sidecar is renewed, which
// happens only when the pod template changes anyway
// (patches.TemplateChanged); otherwise an older sidecar the request dropped
// is kept (patches.KeepInjection). A CREATE, or an UPDATE without its old
// object (the offline review command), gets p.
// A non-nil response is the answer to give instead.
func policyFor(req admission.Request, d *appsv1.Deployment, p patches.Policy) (patches.Policy, *admission.Response) {
	if req.Operation != admissionv1.Update || len(req.OldObject.Raw) == 0 {
		return p, nil
	}
	old := &appsv1.Deployment{}
	if sigsjson.UnmarshalCaseSensitivePreserveInts(req.OldObject.Raw, old) != nil {
		// The API server always sends the stored object; a review that
		// holds something else is answered on its object alone, as a
		// CREATE would be.
		return p, nil
	}
	if err := patches.CheckUpdate(old, d, p); err != nil {
		resp := admission.Denied(err.Error())
		return p, &resp
	}
	p.RenewSidecar = patches.TemplateChanged(old, d)
	if !p.RenewSidecar {
		patches.KeepInjection(old, d, p)
	}
	return p, nil
}
