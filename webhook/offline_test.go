package webhook

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"sigs.k8s.io/yaml"

	"github.com/singleton-webhook/singleton-webhook/patches"
)

// singletonYAML is a singleton Deployment without a strategy field, as users
// write them; mutatedYAML is what it becomes.
const (
	singletonYAML = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: worker
  namespace: jobs
  annotations:
    singleton: "true"
spec:
  replicas: 3
  selector:
    matchLabels: {app: worker}
  template:
    metadata:
      labels: {app: worker}
    spec:
      containers:
      - name: worker
        image: registry.k8s.io/pause:3.10
`
	mutatedYAML = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: worker
  namespace: jobs
  labels: {singleton.dev/mode: replicas}
  annotations:
    singleton: "true"
    singleton.dev/original-replicas: "3"
    singleton.dev/original-strategy: RollingUpdate
spec:
  replicas: 1
  strategy: {type: Recreate}
  selector:
    matchLabels: {app: worker}
  template:
    metadata:
      labels: {app: worker, singleton.dev/deployment: worker}
    spec:
      schedulingGates: [{name: singleton.dev/one-at-a-time}]
      containers:
      - name: worker
        image: registry.k8s.io/pause:3.10
`
	configMapYAML = `apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: jobs
data:
  replicas: "3"
`
	ordinaryYAML = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: jobs
spec:
  replicas: 4
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: registry.k8s.io/pause:3.10
`
)

var workerWarnings = []string{
	"Deployment jobs/worker: singleton: spec.replicas forced from 3 to 1 (the request is kept in singleton.dev/original-replicas)",
	"Deployment jobs/worker: singleton: spec.strategy forced from RollingUpdate to Recreate (a rolling update runs the old and the new pod at once)",
	"Deployment jobs/worker: singleton: pod template gains the scheduling gate singleton.dev/one-at-a-time (a new Pod starts only once the previous one is gone, also on delete, eviction and drain)",
	"Deployment jobs/worker: singleton: pod template labelled singleton.dev/deployment=worker (the webhook's controllers find the Pods of this singleton by it)",
	"Deployment jobs/worker: singleton: labelled the Deployment singleton.dev/mode=replicas (the webhook's controllers watch singletons by it)",
}

// indent shifts a YAML document right, to nest it under a list's items.
func indent(doc, prefix string) string {
	lines := strings.Split(strings.TrimRight(doc, "\n"), "\n")
	for i, l := range lines {
		if i == 0 {
			lines[i] = "- " + l
		} else {
			lines[i] = prefix + l
		}
	}
	return strings.Join(lines, "\n") + "\n"
}

// stripTypeMeta removes the first two lines (apiVersion, kind) of a document.
func stripTypeMeta(doc string) string {
	return strings.SplitN(doc, "\n", 3)[2]
}

func TestMutate(t *testing.T) {
	tests := map[string]struct {
		in       string
		want     []string // one manifest per output object
		warnings []string
		denials  []string
	}{
		"a multi-document stream with comments": {
			in:       "# the worker\n" + singletonYAML + "---\n# settings\n" + configMapYAML + "---\n" + ordinaryYAML + "---\n",
			want:     []string{mutatedYAML, configMapYAML, ordinaryYAML},
			warnings: workerWarnings,
		},
		"a kind: List": {
			in: "apiVersion: v1\nkind: List\nmetadata: {}\nitems:\n" +
				indent(singletonYAML, "  ") + indent(configMapYAML, "  ") + indent(ordinaryYAML, "  "),
			want: []string{"apiVersion: v1\nkind: List\nmetadata: {}\nitems:\n" +
				indent(mutatedYAML, "  ") + indent(configMapYAML, "  ") + indent(ordinaryYAML, "  ")},
			warnings: workerWarnings,
		},
		"a DeploymentList, whose items carry no kind": {
			in: "apiVersion: apps/v1\nkind: DeploymentList\nmetadata: {resourceVersion: \"7\"}\nitems:\n" +
				indent(stripTypeMeta(singletonYAML), "  ") + indent(stripTypeMeta(ordinaryYAML), "  "),
			want: []string{"apiVersion: apps/v1\nkind: DeploymentList\nmetadata: {resourceVersion: \"7\"}\nitems:\n" +
				indent(stripTypeMeta(mutatedYAML), "  ") + indent(stripTypeMeta(ordinaryYAML), "  ")},
			warnings: workerWarnings,
		},
		"a list without items is left as it is": {
			in:   "apiVersion: v1\nkind: List\nmetadata: {}\n",
			want: []string{"apiVersion: v1\nkind: List\nmetadata: {}\n"},
		},
		"a JSON stream": {
			in:       string(toJSON(t, singletonYAML)) + "\n" + string(toJSON(t, configMapYAML)),
			want:     []string{mutatedYAML, configMapYAML},
			warnings: workerWarnings,
		},
		"empty documents are skipped": {
			in:   "---\n# nothing\n---\n" + configMapYAML + "---\n---\n",
			want: []string{configMapYAML},
		},
		"a denied Deployment is reported and the others still run": {
			in:       strings.Replace(singletonYAML, `singleton: "true"`, `singleton: "yes"`, 1) + "---\n" + singletonYAML,
			want:     []string{strings.Replace(singletonYAML, `singleton: "true"`, `singleton: "yes"`, 1), mutatedYAML},
			warnings: workerWarnings,
			denials: []string{`Deployment jobs/worker: annotation singleton: "yes" is not accepted; ` +
				`use "true" to enforce or "false" to opt out (exact, lower case)`},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			h := NewHandlers(patches.Policy{}, nil).Deployments
			res, err := Mutate(context.Background(), h, strings.NewReader(tc.in))
			if err != nil {
				t.Fatalf("Mutate: %v", err)
			}
			if len(res.Objects) != len(tc.want) {
				t.Fatalf("got %d objects, want %d:\n%s", len(res.Objects), len(tc.want), bytes.Join(res.Objects, []byte("---\n")))
			}
			for i := range tc.want {
				assertSameJSON(t, yamlJSON(t, res.Objects[i]), toJSON(t, tc.want[i]))
			}
			assertWarnings(t, res.Warnings, tc.warnings)
			assertWarnings(t, res.Denials, tc.denials)
			if len(tc.denials) != 0 {
				return
			}
			again, err := Mutate(context.Background(), h, bytes.NewReader(bytes.Join(res.Objects, []byte("---\n"))))
			if err != nil {
				t.Fatalf("Mutate on its own output: %v", err)
			}
			if !equalDocs(again.Objects, res.Objects) || len(again.Warnings) != 0 {
				t.Errorf("Mutate on its own output changed it or warned: %q", again.Warnings)
			}
		})
	}
}

func TestMutateRefusesWhatIsNotAnObject(t *testing.T) {
	tests := map[string]struct{ in, want string }{
		"a document without kind":  {in: "metadata: {name: x}\n", want: "document 1: not a Kubernetes object: it has no kind"},
		"a scalar document":        {in: configMapYAML + "---\njust text\n", want: "document 2: not a Kubernetes object"},
		"a List item without kind": {in: "apiVersion: v1\nkind: List\nitems:\n- metadata: {name: x}\n", want: "document 1: item 0: not a Kubernetes object: it has no kind"},
		"broken YAML":              {in: "kind: [\n", want: "read document 1"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := Mutate(context.Background(), &Deployments{}, strings.NewReader(tc.in))
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("err = %v, want it to start with %q", err, tc.want)
			}
		})
	}
}

func TestReview(t *testing.T) {
	h := NewHandlers(patches.Policy{}, nil)
	t.Run("a Deployment CREATE is answered like the server", func(t *testing.T) {
		raw := toJSON(t, singletonYAML)
		req := deploymentRequest(admissionv1.Create, raw)
		out, err := Review(context.Background(), h, reviewBytes(t, req))
		if err != nil {
			t.Fatalf("Review: %v", err)
		}
		resp := decodeReviewResponse(t, out)
		if resp.UID != req.UID || !resp.Allowed || resp.PatchType == nil || *resp.PatchType != admissionv1.PatchTypeJSONPatch {
			t.Fatalf("got %+v, want allowed JSONPatch with the UID", resp)
		}
		assertSameJSON(t, applyOpsJSON(t, raw, resp.Patch), toJSON(t, mutatedYAML))
		var want []string
		for _, w := range workerWarnings {
			want = append(want, strings.TrimPrefix(w, "Deployment jobs/worker: "))
		}
		assertWarnings(t, resp.Warnings, want)
		again, err := Review(context.Background(), h, reviewBytes(t, req))
		if err != nil || !bytes.Equal(again, out) {
			t.Errorf("a second review of the same request differs (err %v):\n%s\n%s", err, out, again)
		}
	})
	t.Run("a Scale goes to the scale handler, which has no cluster", func(t *testing.T) {
		req := scaleRequest("default", "web", scaleJSON(4))
		out, err := Review(context.Background(), h, reviewBytes(t, req))
		if err != nil {
			t.Fatalf("Review: %v", err)
		}
		resp := decodeReviewResponse(t, out)
		if resp.UID != req.UID || !resp.Allowed || resp.Patch != nil {
			t.Fatalf("got %+v, want allowed, no patch, with the UID", resp)
		}
		assertWarnings(t, resp.Warnings, []string{"singleton: the parent Deployment was not looked up (no cluster); scale not checked"})
	})
	t.Run("an undecodable object is answered with a 400", func(t *testing.T) {
		req := deploymentRequest(admissionv1.Create, []byte(`{"spec":7}`))
		out, err := Review(context.Background(), h, reviewBytes(t, req))
		if err != nil {
			t.Fatalf("Review: %v", err)
		}
		if resp := decodeReviewResponse(t, out); resp.Allowed || resp.Result == nil || resp.Result.Code != 400 {
			t.Errorf("got %+v, want Errored(400)", resp)
		}
	})
}

func TestReviewRefusesWhatIsNotAReview(t *testing.T) {
	tests := map[string]struct{ in, want string }{
		"not JSON": {in: "apiVersion: admission.k8s.io/v1", want: "read AdmissionReview: invalid character"},
		"a Deployment": {in: string(toJSON(t, singletonYAML)),
			want: `read AdmissionReview: got apiVersion "apps/v1" kind "Deployment", want admission.k8s.io/v1 AdmissionReview`},
		"a v1beta1 review": {in: `{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":{"uid":"x"}}`,
			want: `read AdmissionReview: got apiVersion "admission.k8s.io/v1beta1" kind "AdmissionReview", want admission.k8s.io/v1 AdmissionReview`},
		"a review without request": {in: `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}`,
			want: "read AdmissionReview: it has no request"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			out, err := Review(context.Background(), NewHandlers(patches.Policy{}, nil), []byte(tc.in))
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("err = %v, want one line starting with %q", err, tc.want)
			}
			if out != nil {
				t.Errorf("wrote %s alongside an error", out)
			}
		})
	}
}

// yamlJSON converts one YAML document of Mutate's output to JSON.
func yamlJSON(t testing.TB, doc []byte) []byte {
	t.Helper()
	b, err := yaml.YAMLToJSON(doc)
	if err != nil {
		t.Fatalf("Mutate wrote a document that is not YAML: %v\n%s", err, doc)
	}
	return b
}

func equalDocs(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

// TestMutateAgreesWithGolden runs every golden case of package patches that
// uses the default policy through Mutate, the JSON patch path of the webhook,
// and checks that it yields the golden Deployment (or its refusal).
func TestMutateAgreesWithGolden(t *testing.T) {
	ran := 0
	for _, c := range goldenCases(t) {
		if _, custom := c.policy(t); custom {
			continue
		}
		ran++
		t.Run(c.name, func(t *testing.T) {
			in := c.json
			golden, err := os.ReadFile(c.base + ".golden.yaml")
			if err != nil {
				t.Fatal(err)
			}
			res, err := Mutate(context.Background(), &Deployments{}, bytes.NewReader(in))
			if err != nil {
				t.Fatalf("Mutate: %v", err)
			}
			if msg, refused := strings.CutPrefix(string(golden), "# error: "); refused {
				if len(res.Denials) != 1 || !strings.HasSuffix(res.Denials[0], ": "+strings.TrimSpace(msg)) {
					t.Errorf("denials %q, want the golden refusal %q", res.Denials, msg)
				}
				return
			}
			if len(res.Denials) != 0 || len(res.Objects) != 1 {
				t.Fatalf("denials %q, %d objects; want one object", res.Denials, len(res.Objects))
			}
			got, want := &appsv1.Deployment{}, &appsv1.Deployment{}
			if err := yaml.UnmarshalStrict(res.Objects[0], got); err != nil {
				t.Fatalf("decode Mutate's output: %v", err)
			}
			if err := yaml.UnmarshalStrict(golden, want); err != nil {
				t.Fatalf("decode golden: %v", err)
			}
			if !equality.Semantic.DeepEqual(got, want) {
				t.Errorf("Mutate and the golden file differ:\n%s", res.Objects[0])
			}
			var wantWarnings []string
			for _, l := range strings.Split(string(golden), "\n") {
				if w, ok := strings.CutPrefix(l, "# - "); ok {
					wantWarnings = append(wantWarnings, w)
				}
			}
			gotWarnings := make([]string, len(res.Warnings))
			for i, w := range res.Warnings {
				_, gotWarnings[i], _ = strings.Cut(w, ": ")
			}
			assertWarnings(t, gotWarnings, wantWarnings)
		})
	}
	if ran < 10 {
		t.Errorf("ran %d golden cases, want at least 10", ran)
	}
}
