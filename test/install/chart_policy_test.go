//go:build integration

package install

import (
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/singleton-webhook/singleton-webhook/internal/testenv"
)

// mapAPIVersion is the capability the chart needs for admission=policy.
const mapAPIVersion = "admissionregistration.k8s.io/v1/MutatingAdmissionPolicy"

// renderPolicyComponent renders manifests/ with the policy component, the
// overlay docs/install.md shows, with testImage as renderInstall sets it.
func renderPolicyComponent(t *testing.T) []*unstructured.Unstructured {
	t.Helper()
	root, err := testenv.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	kubectl, err := testenv.KubectlPath(root)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.CopyFS(filepath.Join(dir, "base"), os.DirFS(filepath.Join(root, "manifests"))); err != nil {
		t.Fatal(err)
	}
	name, tag, _ := strings.Cut(testImage, ":")
	overlay := "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [base]\ncomponents: [base/components/policy]\n" +
		"images:\n- name: " + baseImage + "\n  newName: " + name + "\n  newTag: \"" + tag + "\"\n"
	if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(overlay), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(kubectl, "kustomize", dir).CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl kustomize with the policy component: %v\n%s", err, out)
	}
	objs, err := decodeObjects(out)
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

// TestChartPolicyMatchesKustomize: admission=policy renders what the base
// with the policy component holds; admission=both the policies with the
// webhook's configuration unchanged; and a cluster without
// MutatingAdmissionPolicy v1 is refused in one line.
func TestChartPolicyMatchesKustomize(t *testing.T) {
	kustomized := byKey(renderPolicyComponent(t))
	delete(kustomized, "Namespace /"+systemNamespace)
	for _, k := range []string{"MutatingAdmissionPolicy /singleton-replicas", "ValidatingAdmissionPolicyBinding /singleton-replicas-warnings"} {
		if kustomized[k] == nil {
			t.Fatalf("the policy component renders no %s", k)
		}
	}
	withMAP := append(chartTestValues(), "--no-hooks", "--api-versions", mapAPIVersion) // hooks: TestChartRendersTheReleaseHook
	t.Run("admission=policy", func(t *testing.T) {
		compareInstalls(t, byKey(renderChart(t, append(withMAP, "--set", "admission=policy")...)), kustomized)
	})
	t.Run("admission=both", func(t *testing.T) {
		want := maps.Clone(kustomized)
		base := byKey(renderInstall(t).objects)
		const hooks = "MutatingWebhookConfiguration /singleton-webhook"
		want[hooks] = base[hooks]
		compareInstalls(t, byKey(renderChart(t, append(withMAP, "--set", "admission=both")...)), want)
	})
	t.Run("a cluster without MutatingAdmissionPolicy v1", func(t *testing.T) {
		out, err := helm(t, "template", "singleton-webhook", chartDir, "--namespace", systemNamespace,
			"--kube-version", "1.35.0", "--set", "admission=policy")
		if helmHasMAPByDefault(t) {
			t.Logf("helm's default capabilities include %s; the refusal is checked with the cluster install", mapAPIVersion)
			return
		}
		want := "admission=policy needs MutatingAdmissionPolicy in admissionregistration.k8s.io/v1 (Kubernetes 1.36 or later)"
		if err == nil || !strings.Contains(out, want) {
			t.Fatalf("got %v\n%s\nwant a refusal saying %q", err, out, want)
		}
	})
}

// helmHasMAPByDefault reports whether helm template, without a cluster,
// already counts MutatingAdmissionPolicy v1 among its capabilities.
func helmHasMAPByDefault(t *testing.T) bool {
	t.Helper()
	_, err := helm(t, "template", "singleton-webhook", chartDir, "--namespace", systemNamespace, "--set", "admission=policy")
	return err == nil
}
