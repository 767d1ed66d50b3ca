package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"gomodules.xyz/jsonpatch/v2"
	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	sigsjson "sigs.k8s.io/json"

	"github.com/singleton-webhook/singleton-webhook/patches"
)

// unknownPaths are the objects of a Deployment that withUnknownFields gives
// a field no Go type holds: the top level, the metadata, the spec, its
// strategy, the pod template and its spec, and the first container.
var unknownPaths = []string{"", "/metadata", "/spec", "/spec/strategy", "/spec/template",
	"/spec/template/spec", "/spec/template/spec/containers/0"}

// withUnknownFields returns the Deployment doc with an unknown field in each
// of the unknownPaths it has as an object, and how many it added.
func withUnknownFields(t testing.TB, doc []byte) ([]byte, int) {
	t.Helper()
	var v any
	if err := json.Unmarshal(doc, &v); err != nil {
		t.Fatalf("decode %s: %v", doc, err)
	}
	n := 0
	for _, p := range unknownPaths {
		if obj, ok := valueAt(v, p); ok {
			if m, ok := obj.(map[string]any); ok {
				m["x-unknown"] = map[string]any{"kept": []any{1, "two", nil}}
				n++
			}
		}
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b, n
}

// valueAt returns the value at a JSON pointer path of a decoded document.
func valueAt(doc any, path string) (any, bool) {
	if path == "" {
		return doc, true
	}
	cur := doc
	for _, s := range strings.Split(path, "/")[1:] {
		s = strings.ReplaceAll(strings.ReplaceAll(s, "~1", "/"), "~0", "~")
		switch v := cur.(type) {
		case map[string]any:
			next, ok := v[s]
			if !ok {
				return nil, false
			}
			cur = next
		case []any:
			i, err := strconv.Atoi(s)
			if err != nil || i < 0 || i >= len(v) {
				return nil, false
			}
			cur = v[i]
		default:
			return nil, false
		}
	}
	return cur, true
}

// mutatedJSON is the JSON encoding of raw decoded and mutated under p by
// patches.Apply, or false if raw does not decode or is refused.
func mutatedJSON(t testing.TB, raw []byte, p patches.Policy) ([]byte, bool) {
	t.Helper()
	d := &appsv1.Deployment{}
	if sigsjson.UnmarshalCaseSensitivePreserveInts(raw, d) != nil {
		return nil, false
	}
	if _, err := patches.Apply(d, p); err != nil {
		return nil, false
	}
	b, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	return b, true
}

// checkPatchEffect checks a Deployment patch by its effect on raw, the
// object sent: the result decodes to exactly want (the JSON encoding of the
// mutated Deployment), and every field of raw that the Deployment type
// cannot hold (unknown fields, nulls) is still there, unchanged, wherever
// the object holding it is.
func checkPatchEffect(t testing.TB, raw, patch, want []byte) {
	t.Helper()
	patched := applyOpsJSON(t, raw, patch)
	got := &appsv1.Deployment{}
	if err := sigsjson.UnmarshalCaseSensitivePreserveInts(patched, got); err != nil {
		t.Fatalf("the patched object does not decode: %v\n%s", err, patched)
	}
	b, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, want) {
		t.Fatalf("the patched object decodes to\n%s\nwant the mutated object\n%s\npatch %s", b, want, patch)
	}
	typed := &appsv1.Deployment{}
	if err := sigsjson.UnmarshalCaseSensitivePreserveInts(raw, typed); err != nil {
		t.Fatal(err)
	}
	decoded, err := json.Marshal(typed)
	if err != nil {
		t.Fatal(err)
	}
	dropped, err := jsonpatch.CreatePatch(raw, decoded)
	if err != nil {
		t.Fatal(err)
	}
	var rawDoc, patchedDoc any
	if err := json.Unmarshal(raw, &rawDoc); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(patched, &patchedDoc); err != nil {
		t.Fatal(err)
	}
	for _, op := range dropped {
		if op.Operation != "remove" {
			continue
		}
		parent := op.Path[:strings.LastIndex(op.Path, "/")]
		if _, ok := valueAt(patchedDoc, parent); !ok {
			continue // the mutation removed the object holding it
		}
		was, _ := valueAt(rawDoc, op.Path)
		if now, ok := valueAt(patchedDoc, op.Path); !ok || !reflect.DeepEqual(now, was) {
			t.Errorf("%s, which the Deployment type cannot hold, was %v; after the patch %v (present %t)", op.Path, was, now, ok)
		}
	}
}

// TestPatchYieldsTheMutatedObject checks the handler's patch by its effect
// on every golden input of package patches, under its policy, as sent and
// with unknown fields added, as a CREATE and an UPDATE: the patched object
// decodes to exactly the mutated Deployment, and the unknown fields survive.
func TestPatchYieldsTheMutatedObject(t *testing.T) {
	patchedN, unknownN := 0, 0
	for _, c := range goldenCases(t) {
		p, _ := c.policy(t)
		withUnknown, n := withUnknownFields(t, c.json)
		unknownN += n
		for name, raw := range map[string][]byte{"as sent": c.json, "with unknown fields": withUnknown} {
			for _, op := range []admissionv1.Operation{admissionv1.Create, admissionv1.Update} {
				t.Run(c.name+"/"+name+"/"+string(op), func(t *testing.T) {
					resp := (&Deployments{Policy: p}).Handle(context.Background(), deploymentRequest(op, raw))
					want, mutated := mutatedJSON(t, raw, p)
					if !mutated {
						if resp.Allowed {
							t.Fatalf("allowed an object patches.Apply refuses: %+v", resp.Result)
						}
						return
					}
					patch, err := json.Marshal(resp.Patches)
					if err != nil {
						t.Fatal(err)
					}
					checkPatchEffect(t, raw, patch, want)
					patchedN++
				})
			}
		}
	}
	if patchedN < 40 || unknownN < 5*len(goldenCases(t)) {
		t.Errorf("%d patches checked, %d unknown fields added; the golden inputs no longer exercise the patch", patchedN, unknownN)
	}
}

// wholePatch is the idiom's answer without elision: the patch from raw to
// the JSON encoding of the mutated Deployment, minus what the patch from
// raw to the JSON encoding of raw decoded also has.
func wholePatch(t testing.TB, raw []byte, original, mutated *appsv1.Deployment) []byte {
	t.Helper()
	before, err := json.Marshal(original)
	if err != nil {
		t.Fatal(err)
	}
	after, err := json.Marshal(mutated)
	if err != nil {
		t.Fatal(err)
	}
	ops, err := patchFor(raw, before, after)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(ops)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// checkElidedIsWhole checks that patchOf gives the whole patch
// (wholePatch) for original, sent in the API server's encoding (where
// elision applies), mutated into mutated; it returns that encoding.
func checkElidedIsWhole(t testing.TB, original, mutated *appsv1.Deployment) []byte {
	t.Helper()
	raw, err := json.Marshal(original)
	if err != nil {
		t.Fatal(err)
	}
	ops, err := patchOf(raw, original, mutated)
	if err != nil {
		t.Fatal(err)
	}
	got, err := json.Marshal(ops)
	if err != nil {
		t.Fatal(err)
	}
	if want := wholePatch(t, raw, original, mutated); !bytes.Equal(got, want) {
		t.Fatalf("elided patch\n%s\nwhole patch\n%s", got, want)
	}
	return raw
}

// TestElidedPatchIsTheWholePatch checks patchOf, which elides what the
// mutation left equal before diffing, against the whole diff: for every
// golden input in the API server's encoding (where elision applies), with
// each container, init container and volume changed in turn so that equal
// and changed elements sit side by side, the two patches are the same
// operations, byte for byte.
func TestElidedPatchIsTheWholePatch(t *testing.T) {
	compared, elided := 0, 0
	for _, c := range goldenCases(t) {
		p, _ := c.policy(t)
		d := &appsv1.Deployment{}
		if err := sigsjson.UnmarshalCaseSensitivePreserveInts(c.json, d); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		variants := map[string]*appsv1.Deployment{"as sent": d}
		spec := d.Spec.Template.Spec
		for i := range spec.Containers {
			v := d.DeepCopy()
			v.Spec.Template.Spec.Containers[i].Image += "-changed"
			variants["container "+strconv.Itoa(i)] = v
		}
		for i := range spec.InitContainers {
			v := d.DeepCopy()
			v.Spec.Template.Spec.InitContainers[i].Args = append(v.Spec.Template.Spec.InitContainers[i].Args, "--changed")
			variants["init container "+strconv.Itoa(i)] = v
		}
		for i := range spec.Volumes {
			v := d.DeepCopy()
			v.Spec.Template.Spec.Volumes[i].Name += "-changed"
			variants["volume "+strconv.Itoa(i)] = v
		}
		for name, original := range variants {
			t.Run(c.name+"/"+name, func(t *testing.T) {
				mutated := original.DeepCopy()
				if _, err := patches.Apply(mutated, p); err != nil {
					return
				}
				raw := checkElidedIsWhole(t, original, mutated)
				compared++
				o, _ := elideEqual(original, mutated)
				if b, _ := json.Marshal(o); len(b) < len(raw) {
					elided++
				}
			})
		}
	}
	if compared < 60 || elided < compared/2 {
		t.Errorf("%d patches compared, %d with something elided: the inputs no longer exercise the elision", compared, elided)
	}
	t.Logf("%d patches compared, %d with something elided", compared, elided)
}

// TestCompareOpsOrder checks the patch order: by path segment, array
// indices as numbers, a shorter path before the paths below it, and the
// removes of an array's tail last index first.
func TestCompareOpsOrder(t *testing.T) {
	op := func(kind, path string) jsonpatch.Operation { return jsonpatch.Operation{Operation: kind, Path: path} }
	in := []jsonpatch.Operation{
		op("add", "/spec/template/spec/containers/10/name"),
		op("remove", "/spec/template/spec/volumes/2"),
		op("add", "/metadata/labels/a~1b"),
		op("remove", "/spec/template/spec/volumes/10"),
		op("add", "/spec/template/spec/containers/2/name"),
		op("add", "/spec/template"),
		op("add", "/metadata/annotations/x"),
		op("add", "/spec/template/spec/containers/2"),
	}
	want := []string{
		"/metadata/annotations/x",
		"/metadata/labels/a~1b",
		"/spec/template",
		"/spec/template/spec/containers/2",
		"/spec/template/spec/containers/2/name",
		"/spec/template/spec/containers/10/name",
		"/spec/template/spec/volumes/10",
		"/spec/template/spec/volumes/2",
	}
	for i := range 3 {
		ops := slices.Clone(in)
		rand.New(rand.NewPCG(uint64(i), 0)).Shuffle(len(ops), func(a, b int) { ops[a], ops[b] = ops[b], ops[a] })
		slices.SortStableFunc(ops, compareOps)
		var got []string
		for _, o := range ops {
			got = append(got, o.Path)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("order\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
}
