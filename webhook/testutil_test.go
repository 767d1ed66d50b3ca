package webhook

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
	"sigs.k8s.io/yaml"

	"github.com/singleton-webhook/singleton-webhook/internal/testutil"
	"github.com/singleton-webhook/singleton-webhook/patches"
)

// Shared helpers of the package's tests. Patches are always checked by their
// effect: applied to the raw object with the same JSON patch library the API
// server uses, then compared as JSON values.

// toJSON converts a YAML (or JSON) manifest to JSON, failing the test on error.
func toJSON(t testing.TB, manifest string) []byte {
	t.Helper()
	b, err := yaml.YAMLToJSON([]byte(manifest))
	if err != nil {
		t.Fatalf("convert manifest to JSON: %v", err)
	}
	return b
}

// deploymentRequest is an apps/v1 Deployment admission request for raw.
func deploymentRequest(op admissionv1.Operation, raw []byte) admission.Request {
	return admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
		UID:       types.UID("0c5e6a3e-2f0d-4a39-9b1f-1d1e2c3b4a50"),
		Kind:      metav1.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"},
		Resource:  metav1.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"},
		Name:      "app",
		Namespace: "default",
		Operation: op,
		Object:    runtime.RawExtension{Raw: raw},
	}}
}

// scaleRequest is an UPDATE of deployments/scale for namespace/name.
func scaleRequest(namespace, name string, raw []byte) admission.Request {
	return admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
		UID:         types.UID("6f0b8f3a-8d55-4d0c-a3a5-0a7b9d3c1e22"),
		Kind:        metav1.GroupVersionKind{Group: "autoscaling", Version: "v1", Kind: "Scale"},
		Resource:    metav1.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"},
		SubResource: "scale",
		Name:        name,
		Namespace:   namespace,
		Operation:   admissionv1.Update,
		Object:      runtime.RawExtension{Raw: raw},
	}}
}

// applyOpsJSON applies a JSON patch (its JSON encoding) to doc.
func applyOpsJSON(t testing.TB, doc, patch []byte) []byte {
	t.Helper()
	p, err := jsonpatch.DecodePatch(patch)
	if err != nil {
		t.Fatalf("decode patch %s: %v", patch, err)
	}
	out, err := p.Apply(doc)
	if err != nil {
		t.Fatalf("apply patch %s: %v", patch, err)
	}
	return out
}

// applyResponse applies the patches of a handler's response to raw.
func applyResponse(t testing.TB, raw []byte, resp admission.Response) []byte {
	t.Helper()
	if len(resp.Patches) == 0 {
		return raw
	}
	b, err := json.Marshal(resp.Patches)
	if err != nil {
		t.Fatalf("encode patches: %v", err)
	}
	return applyOpsJSON(t, raw, b)
}

// assertSameJSON fails unless got and want are the same JSON value.
func assertSameJSON(t testing.TB, got, want []byte) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("decode got %s: %v", got, err)
	}
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatalf("decode want %s: %v", want, err)
	}
	if !reflect.DeepEqual(g, w) {
		gy, _ := yaml.JSONToYAML(got)
		wy, _ := yaml.JSONToYAML(want)
		t.Errorf("objects differ\n--- got:\n%s--- want:\n%s", gy, wy)
	}
}

// assertWarnings fails unless got equals want (nil and empty are equal).
func assertWarnings(t testing.TB, got, want []string) {
	t.Helper()
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("warnings:\n got: %q\nwant: %q", got, want)
	}
}

// reviewBytes encodes an admission.k8s.io/v1 AdmissionReview carrying req.
func reviewBytes(t testing.TB, req admission.Request) []byte {
	t.Helper()
	ar := admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request:  &req.AdmissionRequest,
	}
	b, err := json.Marshal(ar)
	if err != nil {
		t.Fatalf("encode AdmissionReview: %v", err)
	}
	return b
}

// serveReview posts an AdmissionReview to h through the HTTP handler the
// server mounts for resource (ResourceDeployments or ResourceScale), and
// decodes the answer.
func serveReview(t testing.TB, resource string, h admission.Handler, body []byte) *admissionv1.AdmissionResponse {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, DeploymentPath, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	NewHTTPHandler(resource, h, nil).ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("HTTP %d: %s", rec.Code, rec.Body)
	}
	return decodeReviewResponse(t, rec.Body.Bytes())
}

// decodeReviewResponse decodes an AdmissionReview answer and returns its
// response, failing the test if it is not an admission.k8s.io/v1 response.
func decodeReviewResponse(t testing.TB, b []byte) *admissionv1.AdmissionResponse {
	t.Helper()
	var ar admissionv1.AdmissionReview
	if err := json.Unmarshal(b, &ar); err != nil {
		t.Fatalf("decode AdmissionReview %s: %v", b, err)
	}
	if ar.APIVersion != "admission.k8s.io/v1" || ar.Kind != "AdmissionReview" {
		t.Errorf("answer is %s %s, want admission.k8s.io/v1 AdmissionReview", ar.APIVersion, ar.Kind)
	}
	if ar.Response == nil {
		t.Fatalf("AdmissionReview has no response: %s", b)
	}
	return ar.Response
}

// goldenCase is an input of package patches' golden tests.
type goldenCase struct {
	name string // file name without .yaml
	base string // path without .yaml: base.golden.yaml, base.policy.yaml
	json []byte // the input Deployment as JSON
}

// goldenCases lists the inputs of package patches' golden tests, the cases
// every mutation path of this package is held to.
func goldenCases(t testing.TB) []goldenCase {
	t.Helper()
	var cases []goldenCase
	for _, file := range testutil.GoldenInputs(t, filepath.Join("..", "patches", "testdata"), "*.yaml", 10) {
		base := strings.TrimSuffix(file, ".yaml")
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		j, err := yaml.YAMLToJSON(b)
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		cases = append(cases, goldenCase{name: filepath.Base(base), base: base, json: j})
	}
	return cases
}

// policy returns the case's policy file, if it has one.
func (c goldenCase) policy(t testing.TB) (patches.Policy, bool) {
	t.Helper()
	var p patches.Policy
	b, err := os.ReadFile(c.base + testutil.PolicySuffix)
	if errors.Is(err, os.ErrNotExist) {
		return p, false
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict(b, &p); err != nil {
		t.Fatalf("decode %s.policy.yaml: %v", c.base, err)
	}
	return p, true
}
