package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"sync"

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
//
// An object from the API server is in the type's encoding: raw is
// json(original) byte for byte, the patch from raw to original is empty,
// and the answer is CreatePatch(json(original), json(mutated)). Then what
// the mutation left as it was (each container, init container and volume
// at the same index, the managed fields, the status) is elided from both
// documents first: CreatePatch compares arrays index by index and gives no
// operation for an element equal in both, so the patch is the same, and
// the documents it decodes are a fraction of the object.
// TestElidedPatchIsTheWholePatch holds the two equal.
func patchOf(raw []byte, original, mutated *appsv1.Deployment) ([]jsonpatch.Operation, error) {
	b, a := encodeBuffers.Get().(*bytes.Buffer), encodeBuffers.Get().(*bytes.Buffer)
	defer encodeBuffers.Put(b)
	defer encodeBuffers.Put(a)
	before, err := encode(b, original)
	if err != nil {
		return nil, err
	}
	if bytes.Equal(raw, before) {
		original, mutated = elideEqual(original, mutated)
		if before, err = encode(b, original); err != nil {
			return nil, err
		}
		raw = before
	}
	after, err := encode(a, mutated)
	if err != nil {
		return nil, err
	}
	return patchFor(raw, before, after)
}

// encodeBuffers hold the JSON encodings patchOf diffs, which CreatePatch
// decodes and the patch does not keep.
var encodeBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// encode writes v's JSON encoding, as json.Marshal gives it, into buf and
// returns it; the bytes are buf's, valid until its next use.
func encode(buf *bytes.Buffer, v any) ([]byte, error) {
	buf.Reset()
	if err := json.NewEncoder(buf).Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// elideEqual returns copies of original and mutated without what is equal
// in both: the managed fields, the status, and each container, init
// container and volume equal to the one at its index in the other.
func elideEqual(original, mutated *appsv1.Deployment) (*appsv1.Deployment, *appsv1.Deployment) {
	o, m := *original, *mutated
	if reflect.DeepEqual(o.ManagedFields, m.ManagedFields) {
		o.ManagedFields, m.ManagedFields = nil, nil
	}
	if reflect.DeepEqual(o.Status, m.Status) {
		o.Status, m.Status = appsv1.DeploymentStatus{}, appsv1.DeploymentStatus{}
	}
	os, ms := &o.Spec.Template.Spec, &m.Spec.Template.Spec
	os.Containers, ms.Containers = elideElements(os.Containers, ms.Containers)
	os.InitContainers, ms.InitContainers = elideElements(os.InitContainers, ms.InitContainers)
	os.Volumes, ms.Volumes = elideElements(os.Volumes, ms.Volumes)
	return &o, &m
}

// elideElements returns copies of a and b with the zero value in place of
// each element equal to the one at its index in the other.
func elideElements[T any](a, b []T) ([]T, []T) {
	a, b = slices.Clone(a), slices.Clone(b)
	var zero T
	for i := range min(len(a), len(b)) {
		if reflect.DeepEqual(a[i], b[i]) {
			a[i], b[i] = zero, zero
		}
	}
	return a, b
}
