package webhook

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"gomodules.xyz/jsonpatch/v2"
	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	sigsjson "sigs.k8s.io/json"
)

// deploymentView is the part of a Deployment that patches.Apply reads and
// writes: metadata.name, metadata.annotations, spec.replicas, spec.strategy
// and spec.template. Decoding only these fields, with the pod template kept
// as raw bytes until an election-mode Deployment needs it, keeps the handler
// close to the cost of decoding the AdmissionReview itself; managedFields,
// status and the rest are only scanned.
type deploymentView struct {
	Metadata struct {
		Name        string            `json:"name"`
		Namespace   string            `json:"namespace"`
		Annotations map[string]string `json:"annotations"`
	} `json:"metadata"`
	// Spec is nil when the request has no spec, or a null one.
	Spec *deploymentSpec `json:"spec"`
}

// deploymentSpec is the part of a DeploymentSpec the view decodes.
type deploymentSpec struct {
	Replicas *int32                     `json:"replicas"`
	Strategy *appsv1.DeploymentStrategy `json:"strategy"`
	Template json.RawMessage            `json:"template"`
}

// decodeView reads the view out of raw by skimming (see skim.go): only the
// members the view holds are decoded, each as the API server's decoder
// would decode it into the view (a repeated member is decoded into what the earlier one
// left, as the API server's decoder does).
func decodeView(raw []byte) (*deploymentView, error) {
	v := &deploymentView{}
	err := skimObject(raw, func(name string, value []byte) error {
		switch name {
		case "metadata":
			return skimObject(value, v.decodeMetadata)
		case "spec":
			if bytes.Equal(value, []byte("null")) {
				v.Spec = nil
				return nil
			}
			if v.Spec == nil {
				v.Spec = &deploymentSpec{}
			}
			return skimObject(value, v.Spec.decode)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return v, nil
}

func (v *deploymentView) decodeMetadata(name string, value []byte) error {
	m := &v.Metadata
	switch name {
	case "name":
		return member("metadata.name", value, &m.Name)
	case "namespace":
		return member("metadata.namespace", value, &m.Namespace)
	case "annotations":
		return member("metadata.annotations", value, &m.Annotations)
	}
	return nil
}

func (s *deploymentSpec) decode(name string, value []byte) error {
	switch name {
	case "replicas":
		return member("spec.replicas", value, &s.Replicas)
	case "strategy":
		return member("spec.strategy", value, &s.Strategy)
	case "template":
		s.Template = value
	}
	return nil
}

// member decodes one member's value as the API server's decoder does (case
// sensitive), naming the member in the error.
func member(path string, value []byte, into any) error {
	if err := sigsjson.UnmarshalCaseSensitivePreserveInts(value, into); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// rawTemplate is the request's pod template, undecoded; nil without a spec.
func (v *deploymentView) rawTemplate() []byte {
	if v.Spec == nil {
		return nil
	}
	return v.Spec.Template
}

// deployment returns the typed Deployment of the view; its pod template is
// decoded only when withTemplate is set.
func (v *deploymentView) deployment(withTemplate bool) (*appsv1.Deployment, error) {
	d := &appsv1.Deployment{}
	d.Name, d.Namespace = v.Metadata.Name, v.Metadata.Namespace
	d.Annotations = maps.Clone(v.Metadata.Annotations)
	if v.Spec == nil {
		return d, nil
	}
	if r := v.Spec.Replicas; r != nil {
		replicas := *r
		d.Spec.Replicas = &replicas
	}
	if s := v.Spec.Strategy; s != nil {
		d.Spec.Strategy = *s.DeepCopy()
	}
	if t := v.Spec.Template; withTemplate && len(t) > 0 {
		if err := sigsjson.UnmarshalCaseSensitivePreserveInts(t, &d.Spec.Template); err != nil {
			return nil, fmt.Errorf("spec.template: %w", err)
		}
	}
	return d, nil
}

// patchOps derives the JSON patch from what the mutation changed, field by
// field, instead of diffing whole documents: the view says which fields the
// request had, so every operation applies to it. Annotations are patched
// key by key; replicas, strategy and the pod template as whole values ("add"
// replaces a member that exists). before is the view's Deployment as
// decoded, after the mutated one; withTemplate says whether the pod template
// was decoded. The operations come in a fixed order.
func patchOps(v *deploymentView, before, after *appsv1.Deployment, withTemplate bool) []jsonpatch.Operation {
	ops := annotationOps(before.Annotations, after.Annotations)
	spec := map[string]any{} // the spec fields to write
	switch b, a := before.Spec.Replicas, after.Spec.Replicas; {
	case a == nil && b != nil:
		ops = append(ops, jsonpatch.NewOperation("remove", "/spec/replicas", nil))
	case a != nil && (b == nil || *a != *b):
		spec["replicas"] = *a
	}
	if !equality.Semantic.DeepEqual(before.Spec.Strategy, after.Spec.Strategy) {
		spec["strategy"] = after.Spec.Strategy
	}
	// An undecoded template is not compared: only election mode writes the
	// template, and stripping an earlier injection needs its marker, whose
	// presence in the bytes is what decodes the template (see Handle).
	if withTemplate && !equality.Semantic.DeepEqual(before.Spec.Template, after.Spec.Template) {
		spec["template"] = after.Spec.Template
	}
	if v.Spec == nil {
		// No spec (or a null one) in the request: write it whole.
		if len(spec) > 0 {
			ops = append(ops, jsonpatch.NewOperation("add", "/spec", spec))
		}
		return ops
	}
	for _, k := range slices.Sorted(maps.Keys(spec)) {
		ops = append(ops, jsonpatch.NewOperation("add", "/spec/"+k, spec[k]))
	}
	return ops
}

// annotationOps patches metadata.annotations key by key, in key order.
func annotationOps(before, after map[string]string) []jsonpatch.Operation {
	if maps.Equal(before, after) {
		return nil
	}
	if before == nil {
		return []jsonpatch.Operation{jsonpatch.NewOperation("add", "/metadata/annotations", after)}
	}
	var ops []jsonpatch.Operation
	for _, k := range slices.Sorted(maps.Keys(before)) {
		if _, ok := after[k]; !ok {
			ops = append(ops, jsonpatch.NewOperation("remove", "/metadata/annotations/"+escape(k), nil))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(after)) {
		if v, ok := before[k]; !ok || v != after[k] {
			ops = append(ops, jsonpatch.NewOperation("add", "/metadata/annotations/"+escape(k), after[k]))
		}
	}
	return ops
}

// pointerEscaper encodes a map key as a JSON pointer segment (RFC 6901).
var pointerEscaper = strings.NewReplacer("~", "~0", "/", "~1")

func escape(k string) string { return pointerEscaper.Replace(k) }
