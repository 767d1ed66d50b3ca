package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// Hostile input through the real HTTP handler. Every case states the exact
// HTTP status, and for an AdmissionReview answer the exact allowed flag,
// status code and message, the echoed UID, and the single admission counter
// it moved.

const hostileUID = types.UID("0c5e6a3e-2f0d-4a39-9b1f-1d1e2c3b4a50")

// hostileDeployment is a singleton Deployment with extra annotations (JSON
// members, with a leading comma) and a spec (JSON).
func hostileDeployment(annotations, spec string) []byte {
	return []byte(`{"apiVersion":"apps/v1","kind":"Deployment",` +
		`"metadata":{"name":"app","namespace":"default","annotations":{"singleton":"true"` + annotations + `}},` +
		`"spec":` + spec + `}`)
}

const hostileSpec = `{"replicas":3,"selector":{"matchLabels":{"app":"a"}},` +
	`"template":{"metadata":{"labels":{"app":"a"}},"spec":{"containers":[{"name":"c","image":"i"}]}}}`

// hostileReview is an AdmissionReview of a Deployment request; edit changes
// the request before it is encoded.
func hostileReview(t testing.TB, op admissionv1.Operation, object []byte, edit func(*admissionv1.AdmissionRequest)) []byte {
	req := deploymentRequest(op, object)
	if edit != nil {
		edit(&req.AdmissionRequest)
	}
	return reviewBytes(t, req)
}

// hostileScale is an AdmissionReview of a deployments/scale UPDATE.
func hostileScale(t testing.TB, name string, object string) []byte {
	return reviewBytes(t, scaleRequest("default", name, []byte(object)))
}

// nested is a JSON value of depth n: [[[...]]].
func nested(n int) string {
	return strings.Repeat("[", n) + strings.Repeat("]", n)
}

// hostileParents knows one singleton Deployment, default/web.
func hostileParents(_ context.Context, namespace, name string) (*metav1.PartialObjectMetadata, error) {
	if namespace == "default" && name == "web" {
		return &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: namespace, Annotations: map[string]string{"singleton": "true"}}}, nil
	}
	return nil, fmt.Errorf("deployments.apps %q not found", name)
}

type hostileCase struct {
	scale       bool   // send to the deployments/scale entry
	method      string // default POST
	contentType string // default application/json; "-" sends none
	body        func(t testing.TB) []byte
	unsized     bool // hide the length, as a chunked upload does

	status  int    // HTTP status
	message string // the text body, or the answer's status.message
	// For an AdmissionReview answer (status 200):
	allowed bool
	code    int32
	uid     types.UID
	patched bool
	// counter is the one admission series the request moves:
	// "resource operation mode outcome reason".
	counter string
}

func hostileCases() map[string]hostileCase {
	review := func(op admissionv1.Operation, object []byte) func(testing.TB) []byte {
		return func(t testing.TB) []byte { return hostileReview(t, op, object, nil) }
	}
	literal := func(s string) func(testing.TB) []byte { return func(testing.TB) []byte { return []byte(s) } }
	mutated := "deployments CREATE replicas mutated "
	return map[string]hostileCase{
		// Transport: real HTTP status codes, which the API server never provokes.
		"a GET is refused with 405": {
			method: http.MethodGet, body: literal(""),
			status: 405, message: "method GET is not allowed: send an AdmissionReview with POST",
			counter: "deployments unknown none errored method",
		},
		"a PUT is refused with 405": {
			method: http.MethodPut, body: review(admissionv1.Create, hostileDeployment("", hostileSpec)),
			status: 405, message: "method PUT is not allowed: send an AdmissionReview with POST",
			counter: "deployments unknown none errored method",
		},
		"a text/plain body is refused with 415": {
			contentType: "text/plain", body: review(admissionv1.Create, hostileDeployment("", hostileSpec)),
			status: 415, message: `content type "text/plain" is not supported: send application/json`,
			counter: "deployments unknown none errored content-type",
		},
		"a body without a content type is refused with 415": {
			contentType: "-", body: review(admissionv1.Create, hostileDeployment("", hostileSpec)),
			status: 415, message: `content type "" is not supported: send application/json`,
			counter: "deployments unknown none errored content-type",
		},
		"an empty body is refused with 400": {
			body: literal(""), status: 400, message: "request body is empty: send an AdmissionReview",
			counter: "deployments unknown none errored empty-body",
		},
		"a body of whitespace is refused with 400": {
			body: literal(" \n\t "), status: 400, message: "request body is empty: send an AdmissionReview",
			counter: "deployments unknown none errored empty-body",
		},
		"a body over the cap is refused with 413": {
			body:   func(testing.TB) []byte { return bytes.Repeat([]byte(" "), maxRequestBytes+1) },
			status: 413, message: "request body is larger than 7340032 bytes",
			counter: "deployments unknown none errored too-large",
		},
		"a body over the cap without a length is refused with 413": {
			body: func(testing.TB) []byte { return bytes.Repeat([]byte(" "), maxRequestBytes+1) }, unsized: true,
			status: 413, message: "request body is larger than 7340032 bytes",
			counter: "deployments unknown none errored too-large",
		},
		// Bodies that are not an AdmissionReview: HTTP 400.
		"truncated JSON is refused with 400": {
			body: func(t testing.TB) []byte {
				b := hostileReview(t, admissionv1.Create, hostileDeployment("", hostileSpec), nil)
				return b[:len(b)/2]
			},
			status: 400, message: "decode AdmissionReview: unexpected end of JSON input",
			counter: "deployments unknown none errored malformed-review",
		},
		"a JSON array is refused with 400": {
			body:   literal(`[{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}]`),
			status: 400, message: "decode AdmissionReview: json: cannot unmarshal array into Go value of type v1.AdmissionReview",
			counter: "deployments unknown none errored malformed-review",
		},
		"an object nested 10,000 deep is refused with 400": {
			body: func(t testing.TB) []byte {
				b := hostileReview(t, admissionv1.Create, hostileDeployment("", `{"x":"NEST"}`), nil)
				return bytes.Replace(b, []byte(`"NEST"`), []byte(nested(10000)), 1)
			},
			status: 400, message: "decode AdmissionReview: invalid character '[' exceeded max depth",
			counter: "deployments unknown none errored malformed-review",
		},
		// Reviews that are not what we speak: a well-formed error review.
		"an AdmissionReview v1beta1 gets an error review echoing the UID": {
			body: func(t testing.TB) []byte {
				return bytes.Replace(hostileReview(t, admissionv1.Create, hostileDeployment("", hostileSpec), nil),
					[]byte(`"admission.k8s.io/v1"`), []byte(`"admission.k8s.io/v1beta1"`), 1)
			},
			status: 200, code: 400, uid: hostileUID,
			message: `expected an AdmissionReview of apiVersion admission.k8s.io/v1, got apiVersion "admission.k8s.io/v1beta1" kind "AdmissionReview"`,
			counter: "deployments CREATE none errored wrong-review",
		},
		"a review of another kind gets an error review": {
			body:   literal(`{"apiVersion":"admission.k8s.io/v1","kind":"Status","request":{"uid":"u-1","operation":"CREATE"}}`),
			status: 200, code: 400, uid: "u-1",
			message: `expected an AdmissionReview of apiVersion admission.k8s.io/v1, got apiVersion "admission.k8s.io/v1" kind "Status"`,
			counter: "deployments CREATE none errored wrong-review",
		},
		"JSON null gets an error review": {
			body: literal(`null`), status: 200, code: 400,
			message: `expected an AdmissionReview of apiVersion admission.k8s.io/v1, got apiVersion "" kind ""`,
			counter: "deployments unknown none errored wrong-review",
		},
		"a review without a request gets an error review": {
			body:   literal(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}`),
			status: 200, code: 400, message: "the AdmissionReview has no request",
			counter: "deployments unknown none errored no-request",
		},
		"a request spelt Request is not a request (names are case-sensitive)": {
			body:   literal(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","Request":{"uid":"u-2"}}`),
			status: 200, code: 400, message: "the AdmissionReview has no request",
			counter: "deployments unknown none errored no-request",
		},
		// Objects that do not decode: an error review with the decoder's reason.
		"replicas as a string is a 400 with the decoder's reason": {
			body:   review(admissionv1.Create, hostileDeployment("", `{"replicas":"3"}`)),
			status: 200, code: 400, uid: hostileUID,
			message: "decode deployment: json: cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas of type int32",
			counter: "deployments CREATE none errored decode",
		},
		"replicas as a float is a 400": {
			body:   review(admissionv1.Create, hostileDeployment("", `{"replicas":1.5}`)),
			status: 200, code: 400, uid: hostileUID,
			message: "decode deployment: json: cannot unmarshal number 1.5 into Go struct field DeploymentSpec.spec.replicas of type int32",
			counter: "deployments CREATE none errored decode",
		},
		"replicas beyond int32 is a 400": {
			body:   review(admissionv1.Create, hostileDeployment("", `{"replicas":2147483648}`)),
			status: 200, code: 400, uid: hostileUID,
			message: "decode deployment: json: cannot unmarshal number 2147483648 into Go struct field DeploymentSpec.spec.replicas of type int32",
			counter: "deployments CREATE none errored decode",
		},
		"replicas of 1e400 is a 400": {
			body:   review(admissionv1.Create, hostileDeployment("", `{"replicas":1e400}`)),
			status: 200, code: 400, uid: hostileUID,
			message: "decode deployment: json: cannot unmarshal number 1e400 into Go struct field DeploymentSpec.spec.replicas of type int32",
			counter: "deployments CREATE none errored decode",
		},
		"an object that is a JSON string is a 400": {
			body:   review(admissionv1.Create, []byte(`"app"`)),
			status: 200, code: 400, uid: hostileUID,
			message: "decode deployment: json: cannot unmarshal string into Go value of type v1.Deployment",
			counter: "deployments CREATE none errored decode",
		},
		"a CREATE without an object is a 400": {
			body:   review(admissionv1.Create, nil),
			status: 200, code: 400, uid: hostileUID,
			message: "decode deployment: unexpected end of JSON input",
			counter: "deployments CREATE none errored decode",
		},
		// Odd but valid objects: answered on their merits.
		"negative replicas are denied": {
			body:   review(admissionv1.Create, hostileDeployment("", `{"replicas":-1}`)),
			status: 200, code: 403, uid: hostileUID,
			message: "spec.replicas is -1; it must not be negative",
			counter: "deployments CREATE none denied ",
		},
		"a null spec is mutated": {
			body:   review(admissionv1.Create, hostileDeployment("", `null`)),
			status: 200, code: 200, uid: hostileUID, allowed: true, patched: true, counter: mutated,
		},
		"an object nested 9,000 deep in an unknown field is mutated": {
			body:   review(admissionv1.Create, hostileDeployment(`,"x":"y"`, strings.Replace(hostileSpec, `{`, `{"x":`+nested(9000)+`,`, 1))),
			status: 200, code: 200, uid: hostileUID, allowed: true, patched: true, counter: mutated,
		},
		"a 6 MiB annotation value just under the cap is mutated": {
			body:   review(admissionv1.Create, hostileDeployment(`,"big":"`+strings.Repeat("x", 6<<20)+`"`, hostileSpec)),
			status: 200, code: 200, uid: hostileUID, allowed: true, patched: true, counter: mutated,
		},
		"a 1 MiB trigger value is denied with a clipped message": {
			body:   review(admissionv1.Create, []byte(`{"metadata":{"annotations":{"singleton":"`+strings.Repeat("y", 1<<20)+`"}}}`)),
			status: 200, code: 403, uid: hostileUID,
			message: `annotation singleton: "` + strings.Repeat("y", 320) + `"… (1048576 bytes) is not accepted; use "true" to enforce or "false" to opt out (exact, lower case)`,
			counter: "deployments CREATE none denied ",
		},
		"a 1 MiB unknown singleton.dev key is denied quickly with a clipped message": {
			body:   review(admissionv1.Create, hostileDeployment(`,"singleton.dev/`+strings.Repeat("k", 1<<20)+`":"v"`, hostileSpec)),
			status: 200, code: 403, uid: hostileUID,
			message: "annotation singleton.dev/" + strings.Repeat("k", 320-len("singleton.dev/")) +
				`… (1048590 bytes): "v" is set on an unknown annotation key; known keys: ` + knownKeysList,
			counter: "deployments CREATE none denied ",
		},
		"a right-to-left override before true is denied, quoted visibly": {
			body:   review(admissionv1.Create, []byte(`{"metadata":{"annotations":{"singleton":"\u202etrue"}}}`)),
			status: 200, code: 403, uid: hostileUID,
			message: `annotation singleton: "\u202etrue" is not accepted; use "true" to enforce or "false" to opt out (exact, lower case)`,
			counter: "deployments CREATE none denied ",
		},
		"a NUL after true is denied, quoted visibly": {
			body:   review(admissionv1.Create, []byte(`{"metadata":{"annotations":{"singleton":"true\u0000"}}}`)),
			status: 200, code: 403, uid: hostileUID,
			message: `annotation singleton: "true\x00" is not accepted; use "true" to enforce or "false" to opt out (exact, lower case)`,
			counter: "deployments CREATE none denied ",
		},
		"unicode in other annotations is carried through": {
			body:   review(admissionv1.Create, hostileDeployment(`,"note":"شرح ✓ \ud83d\ude00 \u202e"`, hostileSpec)),
			status: 200, code: 200, uid: hostileUID, allowed: true, patched: true, counter: mutated,
		},
		"a duplicate trigger key counts its last value, like the API server": {
			body:   review(admissionv1.Create, []byte(`{"metadata":{"annotations":{"singleton":"true","singleton":"false"}}}`)),
			status: 200, code: 200, uid: hostileUID, allowed: true, message: "not a singleton",
			counter: "deployments CREATE none skipped not-singleton",
		},
		"a duplicate request key counts the last request": {
			body: func(t testing.TB) []byte {
				b := hostileReview(t, admissionv1.Create, hostileDeployment("", hostileSpec), nil)
				return bytes.Replace(b, []byte(`"request":{`), []byte(`"request":{"uid":"first"},"request":{`), 1)
			},
			status: 200, code: 200, uid: hostileUID, allowed: true, patched: true, counter: mutated,
		},
		"a null metadata is not a singleton": {
			body:   review(admissionv1.Create, []byte(`{"apiVersion":"apps/v1","kind":"Deployment","metadata":null,"spec":null}`)),
			status: 200, code: 200, uid: hostileUID, allowed: true, message: "not a singleton",
			counter: "deployments CREATE none skipped not-singleton",
		},
		// Requests the API server would not send us: allowed untouched.
		"a DELETE is allowed untouched": {
			body:   review(admissionv1.Delete, nil),
			status: 200, code: 200, uid: hostileUID, allowed: true, message: "operation DELETE is not mutated",
			counter: "deployments DELETE none skipped operation",
		},
		"a CONNECT is allowed untouched": {
			body:   review(admissionv1.Connect, []byte(`{"kind":"PodExecOptions"}`)),
			status: 200, code: 200, uid: hostileUID, allowed: true, message: "operation CONNECT is not mutated",
			counter: "deployments CONNECT none skipped operation",
		},
		"an unknown operation is allowed untouched and counted as unknown": {
			body:   review("EXPLODE", hostileDeployment("", hostileSpec)),
			status: 200, code: 200, uid: hostileUID, allowed: true, message: "operation EXPLODE is not mutated",
			counter: "deployments unknown none skipped operation",
		},
		"a ConfigMap is allowed untouched": {
			body: func(t testing.TB) []byte {
				return hostileReview(t, admissionv1.Create, []byte(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"annotations":{"singleton":"true"}}}`),
					func(r *admissionv1.AdmissionRequest) {
						r.Kind = metav1.GroupVersionKind{Version: "v1", Kind: "ConfigMap"}
						r.Resource = metav1.GroupVersionResource{Version: "v1", Resource: "configmaps"}
					})
			},
			status: 200, code: 200, uid: hostileUID, allowed: true, message: "kind /v1, Kind=ConfigMap is not mutated",
			counter: "deployments CREATE none skipped kind",
		},
		"a dry-run CREATE is mutated like any other (sideEffects None)": {
			body: func(t testing.TB) []byte {
				return hostileReview(t, admissionv1.Create, hostileDeployment("", hostileSpec),
					func(r *admissionv1.AdmissionRequest) { dry := true; r.DryRun = &dry })
			},
			status: 200, code: 200, uid: hostileUID, allowed: true, patched: true, counter: mutated,
		},
		"an UPDATE with a garbage oldObject is mutated on its object": {
			body: func(t testing.TB) []byte {
				return hostileReview(t, admissionv1.Update, hostileDeployment("", hostileSpec),
					func(r *admissionv1.AdmissionRequest) { r.OldObject = runtime.RawExtension{Raw: []byte(`"garbage"`)} })
			},
			status: 200, code: 200, uid: hostileUID, allowed: true, patched: true,
			counter: "deployments UPDATE replicas mutated ",
		},
		"a 1,000-byte UID is echoed": {
			body: func(t testing.TB) []byte {
				return hostileReview(t, admissionv1.Create, hostileDeployment("", hostileSpec),
					func(r *admissionv1.AdmissionRequest) { r.UID = types.UID(strings.Repeat("u", 1000)) })
			},
			status: 200, code: 200, uid: types.UID(strings.Repeat("u", 1000)), allowed: true, patched: true, counter: mutated,
		},
		// The scale entry.
		"a Scale with no name and no parent is allowed with a warning": {
			scale: true, body: func(t testing.TB) []byte { return hostileScale(t, "", `{"kind":"Scale","spec":{"replicas":5}}`) },
			status: 200, code: 200, uid: "6f0b8f3a-8d55-4d0c-a3a5-0a7b9d3c1e22", allowed: true, message: "parent lookup failed",
			counter: "deployments/scale UPDATE none skipped parent-lookup-failed",
		},
		"a Scale of a missing Deployment is allowed with a warning": {
			scale: true, body: func(t testing.TB) []byte { return hostileScale(t, "gone", `{"spec":{"replicas":5}}`) },
			status: 200, code: 200, uid: "6f0b8f3a-8d55-4d0c-a3a5-0a7b9d3c1e22", allowed: true, message: "parent lookup failed",
			counter: "deployments/scale UPDATE none skipped parent-lookup-failed",
		},
		"a Scale with replicas as a string is a 400": {
			scale: true, body: func(t testing.TB) []byte { return hostileScale(t, "web", `{"spec":{"replicas":"5"}}`) },
			status: 200, code: 400, uid: "6f0b8f3a-8d55-4d0c-a3a5-0a7b9d3c1e22",
			message: "decode scale: json: cannot unmarshal string into Go struct field ScaleSpec.spec.replicas of type int32",
			counter: "deployments/scale UPDATE none errored decode",
		},
		"a Scale of a singleton is pinned": {
			scale: true, body: func(t testing.TB) []byte { return hostileScale(t, "web", `{"spec":{"replicas":5}}`) },
			status: 200, code: 200, uid: "6f0b8f3a-8d55-4d0c-a3a5-0a7b9d3c1e22", allowed: true, patched: true,
			counter: "deployments/scale UPDATE replicas mutated ",
		},
	}
}

// knownKeysList is the list the unknown-key denial ends with.
const knownKeysList = "singleton.dev/enforcement, singleton.dev/leader-service, singleton.dev/lease-duration, singleton.dev/lease-name, " +
	"singleton.dev/mode, singleton.dev/original-replicas, singleton.dev/original-strategy, singleton.dev/released, " +
	"singleton.dev/renew-deadline, singleton.dev/retry-period"

func TestHostileInput(t *testing.T) {
	cases := hostileCases()
	if len(cases) < 25 {
		t.Fatalf("%d hostile cases; the contract asks for at least 25", len(cases))
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			m, reg := freshMetrics(t)
			resource, h := ResourceDeployments, admission.Handler(&Deployments{})
			if tc.scale {
				resource, h = ResourceScale, &Scales{Parent: hostileParents}
			}
			body := tc.body(t)
			rec := hostileDo(NewHTTPHandler(resource, h, m), tc, body)
			if rec.Code != tc.status {
				t.Fatalf("HTTP %d, want %d: %s", rec.Code, tc.status, clip(rec.Body.String(), 500))
			}
			if tc.status == http.StatusOK {
				checkHostileAnswer(t, tc, body, rec.Body.Bytes())
			} else if got := strings.TrimSpace(rec.Body.String()); got != tc.message {
				t.Errorf("body %q, want %q", clip(got, 500), tc.message)
			}
			want := map[string]float64{tc.counter: 1}
			if got := admissionCounts(t, reg); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("counters:\n%s\nwant:\n%s", formatCounts(got), formatCounts(want))
			}
		})
	}
}

func hostileDo(h http.Handler, tc hostileCase, body []byte) *httptest.ResponseRecorder {
	method := tc.method
	if method == "" {
		method = http.MethodPost
	}
	ct := tc.contentType
	switch ct {
	case "":
		ct = "application/json"
	case "-":
		ct = ""
	}
	var r io.Reader = bytes.NewReader(body)
	if tc.unsized {
		r = io.MultiReader(r)
	}
	return httpDo(h, method, ct, r)
}

// checkHostileAnswer checks an AdmissionReview answer against the case.
func checkHostileAnswer(t *testing.T, tc hostileCase, body, answer []byte) {
	t.Helper()
	resp := decodeReviewResponse(t, answer)
	if resp.Allowed != tc.allowed || resp.UID != tc.uid {
		t.Errorf("allowed %v uid %q, want allowed %v uid %q", resp.Allowed, clip(string(resp.UID), 40), tc.allowed, clip(string(tc.uid), 40))
	}
	if resp.Result == nil || resp.Result.Code != tc.code {
		t.Fatalf("status %+v, want code %d", resp.Result, tc.code)
	}
	if !tc.patched && resp.Result.Message != tc.message {
		t.Errorf("message %q,\nwant    %q", clip(resp.Result.Message, 600), clip(tc.message, 600))
	}
	if tc.patched != (len(resp.Patch) > 0) {
		t.Fatalf("patch %s, want a patch: %v", resp.Patch, tc.patched)
	}
	if !tc.patched {
		return
	}
	// The patch must apply to the object as sent.
	var ar admissionv1.AdmissionReview
	if err := json.Unmarshal(body, &ar); err != nil {
		t.Fatalf("decode request: %v", err)
	}
	applyOpsJSON(t, ar.Request.Object.Raw, resp.Patch)
}
