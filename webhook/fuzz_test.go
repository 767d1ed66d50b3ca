package webhook

// A fuzz test of the HTTP handler with whole request bodies, for panics,
// OOMs, stack overflows and malformed answers. `go test -fuzz FuzzHTTPHandler
// ./webhook/` (hack/fuzz.sh runs every target).

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"testing"

	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
	sigsjson "sigs.k8s.io/json"

	"github.com/singleton-webhook/singleton-webhook/patches"
)

// fuzzSeeds are AdmissionReviews of every golden case input of the patches
// package, as CREATE and UPDATE, and the small hostile cases.
func fuzzSeeds(f *testing.F) [][]byte {
	var seeds [][]byte
	for _, c := range goldenCases(f) {
		obj := c.json
		if len(obj) > 64<<10 {
			continue // the fuzzer mutates small inputs better
		}
		for _, op := range []admissionv1.Operation{admissionv1.Create, admissionv1.Update} {
			seeds = append(seeds, hostileReview(f, op, obj, nil))
		}
	}
	for _, tc := range hostileCases() {
		if tc.method != "" || tc.contentType != "" {
			continue
		}
		if b := tc.body(f); len(b) < 4<<10 {
			seeds = append(seeds, b)
		}
	}
	return seeds
}

func FuzzHTTPHandler(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s, false)
	}
	f.Add(hostileScale(f, "web", `{"spec":{"replicas":5}}`), true)
	f.Add(hostileScale(f, "", `{"metadata":{"name":"web"},"spec":{"replicas":2}}`), true)
	deployments := NewHTTPHandler(ResourceDeployments, &Deployments{}, nil)
	scales := NewHTTPHandler(ResourceScale, &Scales{Parent: hostileParents}, nil)
	f.Fuzz(func(t *testing.T, body []byte, scale bool) {
		h := deployments
		if scale {
			h = scales
		}
		rec := httpDo(h, http.MethodPost, "application/json", bytes.NewReader(body))
		switch rec.Code {
		case http.StatusOK:
			checkFuzzAnswer(t, h, body, rec.Body.Bytes())
			if !scale {
				checkSameAsDirect(t, body, rec.Body.Bytes())
				checkReviewPatchEffect(t, body, rec.Body.Bytes())
				checkElidedPatch(t, body)
			}
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
			if rec.Body.Len() == 0 {
				t.Fatalf("HTTP %d without a message", rec.Code)
			}
		default:
			t.Fatalf("HTTP %d: %s", rec.Code, rec.Body)
		}
	})
}

// checkFuzzAnswer checks an HTTP 200 answer: a well-formed v1 review that
// echoes the UID, never an internal error, and a patch that applies to the
// object sent and leaves nothing to do on a second pass.
func checkFuzzAnswer(t *testing.T, h http.Handler, body, answer []byte) {
	var ar admissionv1.AdmissionReview
	if err := json.Unmarshal(answer, &ar); err != nil || ar.Response == nil || ar.Kind != "AdmissionReview" ||
		ar.APIVersion != "admission.k8s.io/v1" {
		t.Fatalf("malformed answer (%v): %s", err, answer)
	}
	resp := ar.Response
	if resp.Result == nil {
		t.Fatalf("answer without a status: %s", answer)
	}
	switch code := resp.Result.Code; {
	case resp.Allowed && code != http.StatusOK,
		!resp.Allowed && code != http.StatusBadRequest && code != http.StatusForbidden:
		t.Fatalf("allowed %v with code %d: %s", resp.Allowed, code, answer)
	}
	var in admissionv1.AdmissionReview
	if err := sigsjson.UnmarshalCaseSensitivePreserveInts(body, &in); err != nil {
		t.Fatalf("answered HTTP 200 to an undecodable review: %v", err)
	}
	var uid types.UID
	if in.Request != nil {
		uid = in.Request.UID
	}
	if resp.UID != uid {
		t.Fatalf("uid %q, want %q", resp.UID, uid)
	}
	if len(resp.Patch) == 0 {
		return
	}
	if resp.PatchType == nil || *resp.PatchType != admissionv1.PatchTypeJSONPatch {
		t.Fatalf("patch without the JSONPatch type: %s", answer)
	}
	p, err := jsonpatch.DecodePatch(resp.Patch)
	if err != nil {
		t.Fatalf("undecodable patch %s: %v", resp.Patch, err)
	}
	patched, err := p.Apply(in.Request.Object.Raw)
	if err != nil {
		t.Fatalf("patch %s does not apply to the object sent: %v", resp.Patch, err)
	}
	again := admission.Request{AdmissionRequest: *in.Request}
	again.Object.Raw = patched
	rec := httpDo(h, http.MethodPost, "application/json", bytes.NewReader(reviewBytes(t, again)))
	var second admissionv1.AdmissionReview
	if err := json.Unmarshal(rec.Body.Bytes(), &second); err != nil || second.Response == nil {
		t.Fatalf("second pass: HTTP %d %s", rec.Code, rec.Body)
	}
	if !second.Response.Allowed || len(second.Response.Patch) > 0 || len(second.Response.Warnings) > 0 {
		t.Fatalf("second pass is not a no-op: %s\nfirst patch %s", rec.Body, resp.Patch)
	}
}

// checkSameAsDirect checks that the Deployment handler answers a review
// over HTTP as it answers the same request called directly: same decision,
// message, patch and warnings.
func checkSameAsDirect(t *testing.T, body, answer []byte) {
	var in, out admissionv1.AdmissionReview
	if sigsjson.UnmarshalCaseSensitivePreserveInts(body, &in) != nil || in.Request == nil ||
		in.APIVersion != "admission.k8s.io/v1" || in.Kind != "AdmissionReview" {
		return // refused before the handler
	}
	if err := json.Unmarshal(answer, &out); err != nil {
		t.Fatal(err)
	}
	direct := (&Deployments{}).Handle(context.Background(), admission.Request{AdmissionRequest: *in.Request})
	var patch []byte
	if len(direct.Patches) > 0 {
		var err error
		if patch, err = json.Marshal(direct.Patches); err != nil {
			t.Fatal(err)
		}
	}
	got := out.Response
	var gotMsg, wantMsg string
	if got.Result != nil {
		gotMsg = got.Result.Message
	}
	if direct.Result != nil {
		wantMsg = direct.Result.Message
	}
	if got.Allowed != direct.Allowed || gotMsg != wantMsg || !bytes.Equal(got.Patch, patch) ||
		!slices.Equal(got.Warnings, direct.Warnings) {
		t.Fatalf("over HTTP: allowed %t %q patch %s warnings %q\ncalled directly: allowed %t %q patch %s warnings %q",
			got.Allowed, gotMsg, got.Patch, got.Warnings, direct.Allowed, wantMsg, patch, direct.Warnings)
	}
}

// checkElidedPatch checks, for the object of an input that decodes and
// mutates, the patch patchOf gives it in the API server's encoding (where
// elision applies) against the whole patch (wholePatch).
func checkElidedPatch(t *testing.T, body []byte) {
	var in admissionv1.AdmissionReview
	original := &appsv1.Deployment{}
	if sigsjson.UnmarshalCaseSensitivePreserveInts(body, &in) != nil || in.Request == nil ||
		sigsjson.UnmarshalCaseSensitivePreserveInts(in.Request.Object.Raw, original) != nil {
		return
	}
	mutated := original.DeepCopy()
	if _, err := patches.Apply(mutated, patches.Policy{}); err != nil {
		return
	}
	checkElidedIsWhole(t, original, mutated)
}

// checkReviewPatchEffect checks the patch of an allowed Deployment answer by
// its effect (checkPatchEffect) on the object sent.
func checkReviewPatchEffect(t *testing.T, body, answer []byte) {
	var in, out admissionv1.AdmissionReview
	if err := json.Unmarshal(answer, &out); err != nil {
		t.Fatal(err)
	}
	if out.Response == nil || !out.Response.Allowed || len(out.Response.Patch) == 0 {
		return
	}
	if err := sigsjson.UnmarshalCaseSensitivePreserveInts(body, &in); err != nil || in.Request == nil {
		t.Fatalf("patched a review that does not decode (%v): %s", err, body)
	}
	raw := in.Request.Object.Raw
	want, ok := mutatedJSON(t, raw, patches.Policy{})
	if !ok {
		t.Fatalf("patched an object patches.Apply refuses: %s", raw)
	}
	checkPatchEffect(t, raw, out.Response.Patch, want)
}
