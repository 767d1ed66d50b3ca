//go:build integration

// Package install tests the cluster install against a real API server: the
// rendered manifests apply with server-side apply, pass Pod Security
// "restricted", grant what the webhook needs and nothing more, and their
// cert-manager Certificates, issued and rotated by the real cert-manager run
// in-process, keep every admission working through renewals under load.
package install

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/singleton-webhook/singleton-webhook/internal/testenv"
)

// testImage is the image the tests render the install with, as
// `make manifests IMG=...` would.
const testImage = "registry.example.test/singleton-webhook:v0.0.0-test"

// baseImage is the image manifests/ names before rendering.
const baseImage = "ghcr.io/singleton-webhook/singleton-webhook"

// install is the rendered install: the file and its objects in order.
type install struct {
	file    string
	yaml    []byte
	objects []*unstructured.Unstructured
}

// renderInstall runs hack/render-manifests.sh, the script behind
// `make manifests`, with testImage and the kubectl built into bin/k8s, and
// decodes what it wrote.
func renderInstall(t *testing.T) *install {
	t.Helper()
	root, err := testenv.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	kubectl, err := testenv.KubectlPath(root)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "install.yaml")
	cmd := exec.Command(filepath.Join(root, "hack", "render-manifests.sh"), testImage, out)
	cmd.Env = append(os.Environ(), "KUBECTL="+kubectl)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("hack/render-manifests.sh: %v\n%s", err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := decodeObjects(b)
	if err != nil {
		t.Fatalf("decode rendered install: %v", err)
	}
	return &install{file: out, yaml: b, objects: objs}
}

// decodeObjects splits multi-document YAML into objects, skipping empty
// documents.
func decodeObjects(b []byte) ([]*unstructured.Unstructured, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(b)))
	var objs []*unstructured.Unstructured
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return objs, nil
		}
		if err != nil {
			return nil, err
		}
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal(doc, &u.Object); err != nil {
			return nil, fmt.Errorf("decode document: %w", err)
		}
		if len(u.Object) > 0 {
			objs = append(objs, u)
		}
	}
}

// find returns the object of that kind and name, failing the test if the
// install has none.
func (in *install) find(t *testing.T, kind, name string) *unstructured.Unstructured {
	t.Helper()
	for _, o := range in.objects {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	t.Fatalf("the install has no %s %s", kind, name)
	return nil
}

// encode writes objects back as multi-document YAML.
func encode(t *testing.T, objs []*unstructured.Unstructured) string {
	t.Helper()
	var buf bytes.Buffer
	for _, o := range objs {
		b, err := yaml.Marshal(o.Object)
		if err != nil {
			t.Fatal(err)
		}
		buf.WriteString("---\n")
		buf.Write(b)
	}
	return buf.String()
}
