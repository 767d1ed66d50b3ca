package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
	"sigs.k8s.io/yaml"
)

// MutateResult is what Mutate made of a stream of objects.
type MutateResult struct {
	// Objects are the objects in input order, as YAML documents.
	Objects [][]byte
	// Warnings are the admission warnings, each prefixed by the object.
	Warnings []string
	// Denials are the refusals, each prefixed by the object. When there is
	// any, the stream as a whole is refused.
	Denials []string
}

// Mutate runs every apps/v1 Deployment of a YAML or JSON stream (several
// documents, `kind: List` and typed lists included) through the Deployment
// handler as a CREATE would, applies the resulting patch, and returns every
// object as YAML. Other objects pass through unchanged in content (YAML
// re-encoding sorts keys and drops comments).
func Mutate(ctx context.Context, h *Deployments, r io.Reader) (*MutateResult, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(r, 4096)
	res := &MutateResult{}
	for i := 1; ; i++ {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			if errors.Is(err, io.EOF) {
				return res, nil
			}
			return nil, fmt.Errorf("read document %d: %w", i, err)
		}
		raw = bytes.TrimSpace(raw)
		if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
			continue
		}
		out, err := mutateObject(ctx, h, raw, metav1.TypeMeta{}, res)
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		y, err := yaml.JSONToYAML(out)
		if err != nil {
			return nil, fmt.Errorf("document %d: encode YAML: %w", i, err)
		}
		res.Objects = append(res.Objects, y)
	}
}

// listItems is the part of a List the mutation looks at.
type listItems struct {
	Items []json.RawMessage `json:"items"`
}

// mutateObject mutates one object, recursing into lists. def is the type of
// an item of a typed list (a DeploymentList's items carry no kind).
func mutateObject(ctx context.Context, h *Deployments, raw []byte, def metav1.TypeMeta, res *MutateResult) ([]byte, error) {
	var meta struct {
		metav1.TypeMeta   `json:",inline"`
		metav1.ObjectMeta `json:"metadata"`
	}
	if err := json.Unmarshal(raw, &meta); err != nil {
		return nil, fmt.Errorf("not a Kubernetes object: %w", err)
	}
	if meta.Kind == "" {
		meta.TypeMeta = def
	}
	if meta.Kind == "" {
		return nil, errors.New("not a Kubernetes object: it has no kind")
	}
	if strings.HasSuffix(meta.Kind, "List") {
		return mutateList(ctx, h, raw, meta.TypeMeta, res)
	}
	if meta.APIVersion != "apps/v1" || meta.Kind != "Deployment" {
		return raw, nil
	}
	ref := "Deployment " + meta.Name
	if meta.Namespace != "" {
		ref = "Deployment " + meta.Namespace + "/" + meta.Name
	}
	req := admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
		Operation: admissionv1.Create,
		Kind:      metav1.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"},
		Resource:  metav1.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"},
		Name:      meta.Name,
		Namespace: meta.Namespace,
		Object:    runtime.RawExtension{Raw: raw},
	}}
	resp := h.Handle(ctx, req)
	for _, w := range resp.Warnings {
		res.Warnings = append(res.Warnings, ref+": "+w)
	}
	if !resp.Allowed {
		res.Denials = append(res.Denials, ref+": "+resp.Result.Message)
		return raw, nil
	}
	if len(resp.Patches) == 0 {
		return raw, nil
	}
	return applyOps(raw, resp.Patches)
}

func mutateList(ctx context.Context, h *Deployments, raw []byte, tm metav1.TypeMeta, res *MutateResult) ([]byte, error) {
	var list map[string]json.RawMessage
	var items listItems
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, fmt.Errorf("read list: %w", err)
	}
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, fmt.Errorf("read list items: %w", err)
	}
	if items.Items == nil {
		return raw, nil
	}
	var def metav1.TypeMeta
	if tm.Kind != "List" {
		def = metav1.TypeMeta{APIVersion: tm.APIVersion, Kind: strings.TrimSuffix(tm.Kind, "List")}
	}
	for i, item := range items.Items {
		out, err := mutateObject(ctx, h, item, def, res)
		if err != nil {
			return nil, fmt.Errorf("item %d: %w", i, err)
		}
		items.Items[i] = out
	}
	b, err := json.Marshal(items.Items)
	if err != nil {
		return nil, fmt.Errorf("encode list items: %w", err)
	}
	list["items"] = b
	return json.Marshal(list)
}

// applyOps applies JSON patch operations to a JSON document.
func applyOps(doc []byte, ops any) ([]byte, error) {
	b, err := json.Marshal(ops)
	if err != nil {
		return nil, fmt.Errorf("encode patch: %w", err)
	}
	p, err := jsonpatch.DecodePatch(b)
	if err != nil {
		return nil, fmt.Errorf("decode patch: %w", err)
	}
	out, err := p.Apply(doc)
	if err != nil {
		return nil, fmt.Errorf("apply patch: %w", err)
	}
	return out, nil
}
