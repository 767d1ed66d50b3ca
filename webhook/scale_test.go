package webhook

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/singleton-webhook/singleton-webhook/patches"
)

// scaleJSON is an autoscaling/v1 Scale of default/web asking for replicas.
func scaleJSON(replicas int) []byte {
	return fmt.Appendf(nil, `{"apiVersion":"autoscaling/v1","kind":"Scale",`+
		`"metadata":{"name":"web","namespace":"default","resourceVersion":"42"},`+
		`"spec":{"replicas":%d},"status":{"replicas":1,"selector":"app=web"}}`, replicas)
}

// parents is a ParentLookup over a fixed set of annotations per name; it
// records the keys it was asked for.
type parents struct {
	annotations map[string]map[string]string
	err         error
	asked       []string
}

func (p *parents) lookup(_ context.Context, namespace, name string) (*metav1.PartialObjectMetadata, error) {
	p.asked = append(p.asked, namespace+"/"+name)
	if p.err != nil {
		return nil, p.err
	}
	a, ok := p.annotations[name]
	if !ok {
		return nil, fmt.Errorf("deployments.apps %q not found", name)
	}
	return &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace, Annotations: a}}, nil
}

func TestScales(t *testing.T) {
	const pinned = "singleton: spec.replicas forced from 5 to 1 (Deployment web is a singleton)"
	tests := map[string]struct {
		parent   map[string]string // annotations of default/web
		noParent bool              // a nil ParentLookup (offline)
		lookErr  error
		policy   patches.Policy
		replicas int
		// wantReplicas is spec.replicas after the patch.
		wantReplicas int
		warnings     []string
		wantAsked    bool
	}{
		"a replicas-mode singleton is pinned to 1": {
			parent: map[string]string{"singleton": "true"}, replicas: 5,
			wantReplicas: 1, warnings: []string{pinned}, wantAsked: true,
		},
		"an explicit replicas mode is pinned too": {
			parent: map[string]string{"singleton": "true", "singleton.dev/mode": "replicas"}, replicas: 5,
			policy:       patches.Policy{DefaultMode: patches.ModeElection},
			wantReplicas: 1, warnings: []string{pinned}, wantAsked: true,
		},
		"an ordinary Deployment scales freely": {
			parent: map[string]string{"example.com/owner": "team"}, replicas: 5, wantReplicas: 5, wantAsked: true,
		},
		"a Deployment without annotations scales freely": {
			parent: nil, replicas: 5, wantReplicas: 5, wantAsked: true,
		},
		"an opted-out Deployment scales freely": {
			parent: map[string]string{"singleton": "false"}, replicas: 5, wantReplicas: 5, wantAsked: true,
		},
		"an election-mode singleton keeps its replicas": {
			parent: map[string]string{"singleton": "true", "singleton.dev/mode": "election"}, replicas: 5,
			wantReplicas: 5, wantAsked: true,
		},
		"election by the policy's default keeps its replicas": {
			parent: map[string]string{"singleton": "true"}, policy: patches.Policy{DefaultMode: patches.ModeElection},
			replicas: 5, wantReplicas: 5, wantAsked: true,
		},
		"a parent with a bad trigger is allowed with a warning": {
			parent: map[string]string{"singleton": "yes"}, replicas: 5, wantReplicas: 5, wantAsked: true,
			warnings: []string{`singleton: scale not checked: annotation singleton: "yes" is not accepted; ` +
				`use "true" to enforce or "false" to opt out (exact, lower case)`},
		},
		"a failed lookup is allowed with a warning": {
			lookErr: errors.New("cache not synced"), replicas: 5, wantReplicas: 5, wantAsked: true,
			warnings: []string{"singleton: could not look up Deployment default/web (cache not synced); scale not checked"},
		},
		"one replica is not looked up": {
			parent: map[string]string{"singleton": "true"}, replicas: 1, wantReplicas: 1,
		},
		"zero replicas are not looked up": {
			parent: map[string]string{"singleton": "true"}, replicas: 0, wantReplicas: 0,
		},
		"offline, with no lookup, the scale is allowed with a warning": {
			noParent: true, replicas: 5, wantReplicas: 5,
			warnings: []string{"singleton: the parent Deployment was not looked up (no cluster); scale not checked"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			p := &parents{annotations: map[string]map[string]string{"web": tc.parent}, err: tc.lookErr}
			h := &Scales{Policy: tc.policy, Parent: p.lookup}
			if tc.noParent {
				h.Parent = nil
			}
			raw := scaleJSON(tc.replicas)
			resp := h.Handle(context.Background(), scaleRequest("default", "web", raw))
			if !resp.Allowed {
				t.Fatalf("denied: %+v", resp.Result)
			}
			assertSameJSON(t, applyResponse(t, raw, resp), scaleJSON(tc.wantReplicas))
			assertWarnings(t, resp.Warnings, tc.warnings)
			switch {
			case tc.wantAsked && (len(p.asked) != 1 || p.asked[0] != "default/web"):
				t.Errorf("looked up %q, want [default/web]", p.asked)
			case !tc.wantAsked && len(p.asked) != 0:
				t.Errorf("looked up %q, want no lookup", p.asked)
			}
		})
	}
}

func TestScalesLeaveOtherRequestsAlone(t *testing.T) {
	p := &parents{annotations: map[string]map[string]string{"web": {"singleton": "true"}}}
	tests := map[string]func() admissionv1.AdmissionRequest{
		"a CREATE": func() admissionv1.AdmissionRequest {
			r := scaleRequest("default", "web", scaleJSON(5)).AdmissionRequest
			r.Operation = admissionv1.Create
			return r
		},
		"a DELETE": func() admissionv1.AdmissionRequest {
			r := scaleRequest("default", "web", scaleJSON(5)).AdmissionRequest
			r.Operation = admissionv1.Delete
			return r
		},
		"not the scale subresource": func() admissionv1.AdmissionRequest {
			r := scaleRequest("default", "web", scaleJSON(5)).AdmissionRequest
			r.SubResource = "status"
			return r
		},
		"a Deployment sent to the scale path": func() admissionv1.AdmissionRequest {
			r := scaleRequest("default", "web", scaleJSON(5)).AdmissionRequest
			r.Kind = metav1.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}
			return r
		},
		// The API server's decoder matches field names case-sensitively:
		// it would read no replicas here, and neither does the handler.
		"replicas under keys in another case": func() admissionv1.AdmissionRequest {
			return scaleRequest("default", "web", []byte(`{"Spec":{"Replicas":5}}`)).AdmissionRequest
		},
	}
	for name, req := range tests {
		t.Run(name, func(t *testing.T) {
			r := scaleRequest("", "", nil)
			r.AdmissionRequest = req()
			resp := (&Scales{Parent: p.lookup}).Handle(context.Background(), r)
			if !resp.Allowed || len(resp.Patches) != 0 || len(resp.Warnings) != 0 {
				t.Errorf("allowed %t patches %v warnings %q; want allowed, nothing else", resp.Allowed, resp.Patches, resp.Warnings)
			}
		})
	}
	if len(p.asked) != 0 {
		t.Errorf("looked up %q, want no lookup", p.asked)
	}
}

func TestScalesErrorOnUndecodableObjects(t *testing.T) {
	for name, raw := range map[string]string{
		"not JSON":              "{{",
		"replicas as a string":  `{"spec":{"replicas":"5"}}`,
		"no bytes on an UPDATE": "",
	} {
		t.Run(name, func(t *testing.T) {
			resp := (&Scales{}).Handle(context.Background(), scaleRequest("default", "web", []byte(raw)))
			if resp.Allowed || resp.Result == nil || resp.Result.Code != http.StatusBadRequest {
				t.Errorf("got allowed %t result %+v, want Errored(400)", resp.Allowed, resp.Result)
			}
		})
	}
}

func TestScalesOverHTTP(t *testing.T) {
	p := &parents{annotations: map[string]map[string]string{"web": {"singleton": "true"}}}
	req := scaleRequest("default", "web", scaleJSON(3))
	resp := serveReview(t, ResourceScale, &Scales{Parent: p.lookup}, reviewBytes(t, req))
	if resp.UID != req.UID || !resp.Allowed {
		t.Fatalf("uid %q allowed %t, want %q and allowed", resp.UID, resp.Allowed, req.UID)
	}
	if resp.PatchType == nil || *resp.PatchType != admissionv1.PatchTypeJSONPatch {
		t.Fatalf("patchType %v, want JSONPatch", resp.PatchType)
	}
	assertSameJSON(t, applyOpsJSON(t, scaleJSON(3), resp.Patch), scaleJSON(1))
	assertWarnings(t, resp.Warnings, []string{"singleton: spec.replicas forced from 3 to 1 (Deployment web is a singleton)"})
}
