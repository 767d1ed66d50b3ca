package webhook

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/singleton-webhook/singleton-webhook/patches"
)

const (
	warnReplicas3 = "singleton: spec.replicas forced from 3 to 1 (the request is kept in singleton.dev/original-replicas)"
	warnRolling   = "singleton: spec.strategy forced from RollingUpdate to Recreate (a rolling update runs the old and the new pod at once)"
	warnSurge     = "singleton: spec.strategy forced from RollingUpdate(maxSurge=1,maxUnavailable=0) to Recreate (a rolling update runs the old and the new pod at once)"
	warnDefaults  = "singleton: spec.strategy forced from RollingUpdate(maxSurge=25%,maxUnavailable=25%) to Recreate (a rolling update runs the old and the new pod at once)"
	warnGate      = "singleton: pod template gains the scheduling gate singleton.dev/one-at-a-time (a new Pod starts only once the previous one is gone, also on delete, eviction and drain)"
	warnLabel     = "singleton: pod template labelled singleton.dev/deployment=app (the webhook's controllers find the Pods of this singleton by it)"
	warnMode      = "singleton: labelled the Deployment singleton.dev/mode=replicas (the webhook's controllers watch singletons by it)"
)

// podTemplate is the selector and template every manifest below shares.
const podTemplate = `
  selector:
    matchLabels: {app: app}
  template:
    metadata:
      labels: {app: app}
    spec:
      containers:
      - name: app
        image: registry.k8s.io/pause:3.10
`

// gatedTemplate is podTemplate as replicas mode writes it: labelled with
// the Deployment's name and gated.
var gatedTemplate = gated(podTemplate)

// gated adds the replicas-mode label and scheduling gate to a manifest's
// pod template.
func gated(manifest string) string {
	return strings.NewReplacer(
		"labels: {app: app}\n    spec:\n", "labels: {app: app, singleton.dev/deployment: app}\n    spec:\n      schedulingGates: [{name: singleton.dev/one-at-a-time}]\n",
	).Replace(manifest)
}

// asServed is a singleton Deployment as the API server sends it on an
// UPDATE: defaulted, with status, managed fields and the bookkeeping of an
// earlier enforcement; the user now asks for 3 replicas.
const asServed = `
apiVersion: apps/v1
kind: Deployment
metadata:
  name: app
  namespace: default
  uid: 8e0c4a57-4d2b-4d6e-9f3a-1b2c3d4e5f60
  resourceVersion: "4711"
  generation: 2
  creationTimestamp: "2026-01-02T03:04:05Z"
  annotations:
    singleton: "true"
    singleton.dev/original-replicas: "1"
    singleton.dev/original-strategy: RollingUpdate(maxSurge=25%,maxUnavailable=25%)
  managedFields:
  - manager: kubectl
    operation: Update
    apiVersion: apps/v1
    fieldsType: FieldsV1
    fieldsV1: {"f:spec": {"f:replicas": {}}}
spec:
  replicas: 3
  progressDeadlineSeconds: 600
  revisionHistoryLimit: 10
  strategy:
    type: Recreate
  selector:
    matchLabels: {app: app}
  template:
    metadata:
      creationTimestamp: null
      labels: {app: app}
    spec:
      containers:
      - name: app
        image: registry.k8s.io/pause:3.10
        imagePullPolicy: IfNotPresent
        resources: {}
        terminationMessagePath: /dev/termination-log
        terminationMessagePolicy: File
      dnsPolicy: ClusterFirst
      restartPolicy: Always
      schedulerName: default-scheduler
      securityContext: {}
      terminationGracePeriodSeconds: 30
status:
  observedGeneration: 1
  replicas: 1
  readyReplicas: 1
`

func TestDeploymentsPatchByEffect(t *testing.T) {
	tests := map[string]struct {
		op       admissionv1.Operation
		in, want string
		warnings []string
	}{
		"create with 3 replicas and a surging rolling update": {
			op: admissionv1.Create,
			in: `
apiVersion: apps/v1
kind: Deployment
metadata: {name: app, namespace: default, annotations: {singleton: "true"}}
spec:
  replicas: 3
  strategy: {type: RollingUpdate, rollingUpdate: {maxSurge: 1, maxUnavailable: 0}}` + podTemplate,
			want: `
apiVersion: apps/v1
kind: Deployment
metadata:
  name: app
  labels: {singleton.dev/mode: replicas}
  namespace: default
  annotations:
    singleton: "true"
    singleton.dev/original-replicas: "3"
    singleton.dev/original-strategy: RollingUpdate(maxSurge=1,maxUnavailable=0)
spec:
  replicas: 1
  strategy: {type: Recreate}` + gatedTemplate,
			warnings: []string{warnReplicas3, warnSurge, warnGate, warnLabel, warnMode},
		},
		"create without a strategy field": {
			op: admissionv1.Create,
			in: `
apiVersion: apps/v1
kind: Deployment
metadata: {name: app, annotations: {singleton: "true"}}
spec:
  replicas: 3` + podTemplate,
			want: `
apiVersion: apps/v1
kind: Deployment
metadata:
  name: app
  labels: {singleton.dev/mode: replicas}
  annotations:
    singleton: "true"
    singleton.dev/original-replicas: "3"
    singleton.dev/original-strategy: RollingUpdate
spec:
  replicas: 1
  strategy: {type: Recreate}` + gatedTemplate,
			warnings: []string{warnReplicas3, warnRolling, warnGate, warnLabel, warnMode},
		},
		"create with a null strategy": {
			op: admissionv1.Create,
			in: `
apiVersion: apps/v1
kind: Deployment
metadata: {name: app, annotations: {singleton: "true"}}
spec:
  strategy: null` + podTemplate,
			want: `
apiVersion: apps/v1
kind: Deployment
metadata:
  name: app
  labels: {singleton.dev/mode: replicas}
  annotations:
    singleton: "true"
    singleton.dev/original-replicas: "1"
    singleton.dev/original-strategy: RollingUpdate
spec:
  strategy: {type: Recreate}` + gatedTemplate,
			warnings: []string{warnRolling, warnGate, warnLabel, warnMode},
		},
		"create with replicas unset and Recreate records the request only": {
			op: admissionv1.Create,
			in: `
apiVersion: apps/v1
kind: Deployment
metadata: {name: app, annotations: {singleton: "true"}}
spec:
  strategy: {type: Recreate}` + podTemplate,
			want: `
apiVersion: apps/v1
kind: Deployment
metadata:
  name: app
  labels: {singleton.dev/mode: replicas}
  annotations:
    singleton: "true"
    singleton.dev/original-replicas: "1"
    singleton.dev/original-strategy: Recreate
spec:
  strategy: {type: Recreate}` + gatedTemplate,
			warnings: []string{warnGate, warnLabel, warnMode},
		},
		"create keeps fields the typed struct drops": {
			op: admissionv1.Create,
			in: `
apiVersion: apps/v1
kind: Deployment
metadata:
  name: app
  creationTimestamp: null
  annotations: {singleton: "true"}
  x-unknown-meta: keep
spec:
  replicas: 3
  strategy: {type: Recreate, x-unknown-strategy: keep}
  x-unknown-spec: {nested: [1, 2]}` + podTemplate + `
status: {}
x-unknown-top: keep
`,
			want: `
apiVersion: apps/v1
kind: Deployment
metadata:
  name: app
  labels: {singleton.dev/mode: replicas}
  creationTimestamp: null
  annotations:
    singleton: "true"
    singleton.dev/original-replicas: "3"
    singleton.dev/original-strategy: Recreate
  x-unknown-meta: keep
spec:
  replicas: 1
  strategy: {type: Recreate, x-unknown-strategy: keep}
  x-unknown-spec: {nested: [1, 2]}` + gatedTemplate + `
status: {}
x-unknown-top: keep
`,
			warnings: []string{warnReplicas3, warnGate, warnLabel, warnMode},
		},
		"update as served by the API server after the user scaled to 3": {
			op: admissionv1.Update,
			in: asServed,
			want: strings.NewReplacer(
				`singleton.dev/original-replicas: "1"`, `singleton.dev/original-replicas: "3"`,
				"spec:\n  replicas: 3", "spec:\n  replicas: 1",
				"metadata:\n  name: app\n", "metadata:\n  name: app\n  labels: {singleton.dev/mode: replicas}\n",
			).Replace(gated(asServed)),
			warnings: []string{warnReplicas3, warnGate, warnLabel, warnMode},
		},
		"update of a defaulted rolling update": {
			op: admissionv1.Update,
			in: `
apiVersion: apps/v1
kind: Deployment
metadata: {name: app, annotations: {singleton: "true", singleton.dev/mode: replicas}}
spec:
  replicas: 1
  strategy: {type: RollingUpdate, rollingUpdate: {maxSurge: 25%, maxUnavailable: 25%}}` + podTemplate,
			want: `
apiVersion: apps/v1
kind: Deployment
metadata:
  name: app
  labels: {singleton.dev/mode: replicas}
  annotations:
    singleton: "true"
    singleton.dev/mode: replicas
    singleton.dev/original-replicas: "1"
    singleton.dev/original-strategy: RollingUpdate(maxSurge=25%,maxUnavailable=25%)
spec:
  replicas: 1
  strategy: {type: Recreate}` + gatedTemplate,
			warnings: []string{warnDefaults, warnGate, warnLabel, warnMode},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			h := &Deployments{}
			raw := toJSON(t, tc.in)
			resp := h.Handle(context.Background(), deploymentRequest(tc.op, raw))
			if !resp.Allowed {
				t.Fatalf("not allowed: %+v", resp.Result)
			}
			got := applyResponse(t, raw, resp)
			assertSameJSON(t, got, toJSON(t, tc.want))
			assertWarnings(t, resp.Warnings, tc.warnings)

			// Over HTTP: the same answer, applying to the object as sent.
			served := serveReview(t, ResourceDeployments, h, reviewBytes(t, deploymentRequest(tc.op, raw)))
			if !served.Allowed {
				t.Fatalf("over HTTP, not allowed: %+v", served.Result)
			}
			assertSameJSON(t, applyOpsJSON(t, raw, served.Patch), toJSON(t, tc.want))
			assertWarnings(t, served.Warnings, tc.warnings)

			again := h.Handle(context.Background(), deploymentRequest(admissionv1.Update, got))
			if !again.Allowed || len(again.Patches) != 0 || len(again.Warnings) != 0 {
				t.Errorf("second pass: allowed %t, patches %v, warnings %q; want allowed, nothing else",
					again.Allowed, again.Patches, again.Warnings)
			}
		})
	}
}

func TestDeploymentsDenyBadAnnotations(t *testing.T) {
	tests := map[string]struct {
		annotations string
		replicas    string
		want        string
	}{
		"a trigger of yes": {
			annotations: `{singleton: "yes"}`,
			want:        `annotation singleton: "yes" is not accepted; use "true" to enforce or "false" to opt out (exact, lower case)`,
		},
		"an unknown mode": {
			annotations: `{singleton: "true", singleton.dev/mode: leader}`,
			want:        `annotation singleton.dev/mode: "leader" is not a mode; use one of: replicas, election`,
		},
		"a typo'd key": {
			annotations: `{singleton: "true", singleton.dev/mdoe: replicas}`,
			want:        `annotation singleton.dev/mdoe: "replicas" is set on an unknown annotation key; did you mean singleton.dev/mode?`,
		},
		"negative replicas": {
			annotations: `{singleton: "true"}`,
			replicas:    "-2",
			want:        "spec.replicas is -2; it must not be negative",
		},
	}
	for name, tc := range tests {
		for _, op := range []admissionv1.Operation{admissionv1.Create, admissionv1.Update} {
			t.Run(name+" on "+string(op), func(t *testing.T) {
				replicas := tc.replicas
				if replicas == "" {
					replicas = "3"
				}
				raw := toJSON(t, "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: app, annotations: "+
					tc.annotations+"}\nspec:\n  replicas: "+replicas+podTemplate)
				resp := (&Deployments{}).Handle(context.Background(), deploymentRequest(op, raw))
				if resp.Allowed {
					t.Fatal("allowed, want denied")
				}
				if resp.Result == nil || resp.Result.Code != http.StatusForbidden || resp.Result.Message != tc.want {
					t.Fatalf("result %+v, want code 403 and message %q", resp.Result, tc.want)
				}
				if resp.Result.Reason != metav1.StatusReasonForbidden {
					t.Errorf("reason %q, want %q", resp.Result.Reason, metav1.StatusReasonForbidden)
				}
				if len(resp.Patches) != 0 || len(resp.Warnings) != 0 {
					t.Errorf("a denial carries patches %v, warnings %q", resp.Patches, resp.Warnings)
				}
			})
		}
	}
}

func TestDeploymentsErrorOnUndecodableObjects(t *testing.T) {
	tests := map[string]string{
		"not JSON":               "garbage {",
		"no bytes at all":        "",
		"spec of the wrong type": `{"apiVersion":"apps/v1","kind":"Deployment","spec":"three"}`,
		"replicas as a string":   `{"metadata":{"annotations":{"singleton":"true"}},"spec":{"replicas":"3"}}`,
	}
	for name, raw := range tests {
		t.Run(name, func(t *testing.T) {
			resp := (&Deployments{}).Handle(context.Background(), deploymentRequest(admissionv1.Create, []byte(raw)))
			if resp.Allowed || resp.Result == nil || resp.Result.Code != http.StatusBadRequest {
				t.Fatalf("got allowed %t result %+v, want Errored(400)", resp.Allowed, resp.Result)
			}
			if len(resp.Patches) != 0 {
				t.Errorf("an error carries patches %v", resp.Patches)
			}
			if !json.Valid([]byte(raw)) {
				return // no review can carry it
			}
			served := serveReview(t, ResourceDeployments, &Deployments{}, reviewBytes(t, deploymentRequest(admissionv1.Create, []byte(raw))))
			if served.Allowed || served.Result == nil || served.Result.Code != http.StatusBadRequest ||
				served.Result.Message != resp.Result.Message || served.Patch != nil {
				t.Errorf("over HTTP: got %+v, want %q, no patch", served, resp.Result.Message)
			}
		})
	}
}

func TestDeploymentsLeaveOthersAlone(t *testing.T) {
	singleton := toJSON(t, "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: app, annotations: {singleton: \"true\"}}\nspec:\n  replicas: 3"+podTemplate)
	tests := map[string]struct {
		req    admission.Request
		policy patches.Policy
	}{
		"an ordinary Deployment": {req: deploymentRequest(admissionv1.Create,
			toJSON(t, "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: app}\nspec:\n  replicas: 3"+podTemplate))},
		"an opted-out Deployment": {req: deploymentRequest(admissionv1.Update,
			toJSON(t, "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: app, annotations: {singleton: \"false\"}}\nspec:\n  replicas: 3"+podTemplate))},
		"a DELETE":  {req: deploymentRequest(admissionv1.Delete, singleton)},
		"a CONNECT": {req: deploymentRequest(admissionv1.Connect, singleton)},
		"a StatefulSet sent to this path": {req: func() admission.Request {
			r := deploymentRequest(admissionv1.Create, singleton)
			r.Kind = metav1.GroupVersionKind{Group: "apps", Version: "v1", Kind: "StatefulSet"}
			return r
		}()},
		"a DELETE without an object": {req: deploymentRequest(admissionv1.Delete, nil)},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			resp := (&Deployments{Policy: tc.policy}).Handle(context.Background(), tc.req)
			if !resp.Allowed {
				t.Fatalf("denied: %+v", resp.Result)
			}
			if len(resp.Patches) != 0 || len(resp.Warnings) != 0 {
				t.Errorf("patches %v, warnings %q; want none", resp.Patches, resp.Warnings)
			}
		})
	}
}

func TestDeploymentsOverHTTP(t *testing.T) {
	raw := toJSON(t, "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: app, annotations: {singleton: \"true\"}}\nspec:\n  replicas: 3\n  strategy: {type: RollingUpdate}"+podTemplate)
	want := toJSON(t, "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app\n  labels: {singleton.dev/mode: replicas}\n  annotations:\n"+
		"    singleton: \"true\"\n    singleton.dev/original-replicas: \"3\"\n    singleton.dev/original-strategy: RollingUpdate\n"+
		"spec:\n  replicas: 1\n  strategy: {type: Recreate}"+gatedTemplate)

	t.Run("a singleton is patched and the UID echoed", func(t *testing.T) {
		req := deploymentRequest(admissionv1.Create, raw)
		resp := serveReview(t, ResourceDeployments, &Deployments{}, reviewBytes(t, req))
		if resp.UID != req.UID || !resp.Allowed {
			t.Fatalf("uid %q allowed %t, want %q and allowed", resp.UID, resp.Allowed, req.UID)
		}
		if resp.PatchType == nil || *resp.PatchType != admissionv1.PatchTypeJSONPatch {
			t.Fatalf("patchType %v, want JSONPatch", resp.PatchType)
		}
		assertSameJSON(t, applyOpsJSON(t, raw, resp.Patch), want)
		assertWarnings(t, resp.Warnings, []string{warnReplicas3, warnRolling, warnGate, warnLabel, warnMode})
	})
	t.Run("an ordinary Deployment gets no patch", func(t *testing.T) {
		req := deploymentRequest(admissionv1.Create, toJSON(t, "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: app}\nspec:\n  replicas: 3"+podTemplate))
		resp := serveReview(t, ResourceDeployments, &Deployments{}, reviewBytes(t, req))
		if resp.UID != req.UID || !resp.Allowed || resp.Patch != nil || resp.PatchType != nil || len(resp.Warnings) != 0 {
			t.Errorf("got %+v, want allowed with the UID and nothing else", resp)
		}
	})
	t.Run("a denial keeps its code and message", func(t *testing.T) {
		bad := []byte(`{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"app","annotations":{"singleton":"True"}}}`)
		req := deploymentRequest(admissionv1.Update, bad)
		resp := serveReview(t, ResourceDeployments, &Deployments{}, reviewBytes(t, req))
		if resp.UID != req.UID || resp.Allowed || resp.Result == nil || resp.Result.Code != http.StatusForbidden {
			t.Fatalf("got %+v, want denied 403 with the UID", resp)
		}
		if want := `annotation singleton: "True" is not accepted; use "true" to enforce or "false" to opt out (exact, lower case)`; resp.Result.Message != want {
			t.Errorf("message %q, want %q", resp.Result.Message, want)
		}
	})
	t.Run("garbage is a 400 with the UID", func(t *testing.T) {
		req := deploymentRequest(admissionv1.Create, []byte(`{"spec":[]}`))
		resp := serveReview(t, ResourceDeployments, &Deployments{}, reviewBytes(t, req))
		if resp.UID != req.UID || resp.Allowed || resp.Result == nil || resp.Result.Code != http.StatusBadRequest {
			t.Errorf("got %+v, want Errored(400) with the UID", resp)
		}
	})
}

// TestPatchIsStable checks that the same request always gets the same patch
// bytes: the offline review output must be reproducible.
func TestPatchIsStable(t *testing.T) {
	raw := toJSON(t, asServed)
	first := (&Deployments{}).Handle(context.Background(), deploymentRequest(admissionv1.Update, raw))
	want, err := json.Marshal(first.Patches)
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		resp := (&Deployments{}).Handle(context.Background(), deploymentRequest(admissionv1.Update, raw))
		got, err := json.Marshal(resp.Patches)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Fatalf("patch changed between identical requests:\n%s\n%s", want, got)
		}
	}
}

// TestPatchArrays checks the ordering of array operations: a tail that grows
// or shrinks past ten elements still patches to the right result.
func TestPatchArrays(t *testing.T) {
	seq := func(n int) []any {
		s := make([]any, n)
		for i := range s {
			s[i] = map[string]any{"name": i}
		}
		return s
	}
	tests := map[string]struct{ before, after map[string]any }{
		"a list grows from 3 to 14": {
			before: map[string]any{"a": seq(3), "b": map[string]any{"c": 1}},
			after:  map[string]any{"a": seq(14), "b": map[string]any{"c": 2, "d": true}},
		},
		"a list shrinks from 14 to 2": {
			before: map[string]any{"a": seq(14), "z": "x"},
			after:  map[string]any{"a": seq(2), "y": "x"},
		},
		"elements change in place": {
			before: map[string]any{"a": seq(12)},
			after: map[string]any{"a": func() []any {
				s := seq(12)
				s[1] = map[string]any{"name": 1, "env": []any{"x"}}
				s[11] = map[string]any{"name": "eleven"}
				return s
			}()},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			raw, err := json.Marshal(tc.before)
			if err != nil {
				t.Fatal(err)
			}
			want, err := json.Marshal(tc.after)
			if err != nil {
				t.Fatal(err)
			}
			ops, err := patchFor(raw, raw, want)
			if err != nil {
				t.Fatalf("patchFor: %v", err)
			}
			patch, err := json.Marshal(ops)
			if err != nil {
				t.Fatal(err)
			}
			assertSameJSON(t, applyOpsJSON(t, raw, patch), want)
		})
	}
}
