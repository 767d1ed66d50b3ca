//go:build integration

package install

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/singleton-webhook/singleton-webhook/internal/testenv"
)

// vapAPI is what helm's capabilities list for a cluster serving
// ValidatingAdmissionPolicy v1.
const vapAPI = "admissionregistration.k8s.io/v1/ValidatingAdmissionPolicy"

// TestChartSelfRestraintNamesTheWebhook checks, in the kustomize base and
// in the chart installed into another namespace, that the policy's one
// match condition names exactly the ServiceAccount the webhook's Deployment
// runs as, that its leader-election Lease is exempted in that namespace
// only, and that the binding enforces the policy.
func TestChartSelfRestraintNamesTheWebhook(t *testing.T) {
	t.Run("manifests", func(t *testing.T) { checkSelfRestraintNames(t, renderInstall(t).objects, systemNamespace) })
	t.Run("chart in namespace apps-system", func(t *testing.T) {
		checkSelfRestraintNames(t, renderChart(t, append(chartTestValues(), "--namespace", "apps-system")...), "apps-system")
	})
}

func checkSelfRestraintNames(t *testing.T, objs []*unstructured.Unstructured, ns string) {
	t.Helper()
	var dep, vap, binding *unstructured.Unstructured
	for _, o := range objs {
		switch o.GetKind() + "/" + o.GetName() {
		case "Deployment/singleton-webhook":
			dep = o
		case "ValidatingAdmissionPolicy/singleton-webhook-self-restraint":
			vap = o
		case "ValidatingAdmissionPolicyBinding/singleton-webhook-self-restraint":
			binding = o
		}
	}
	if dep == nil || vap == nil || binding == nil {
		t.Fatalf("want the webhook's Deployment, the policy and its binding; got %v, %v, %v", dep != nil, vap != nil, binding != nil)
	}
	sa, _, _ := unstructured.NestedString(dep.Object, "spec", "template", "spec", "serviceAccountName")
	if dep.GetNamespace() != ns || sa == "" {
		t.Fatalf("the webhook runs as %q in %q; want a named ServiceAccount in %s", sa, dep.GetNamespace(), ns)
	}
	conds, _, _ := unstructured.NestedSlice(vap.Object, "spec", "matchConditions")
	want := fmt.Sprintf("request.userInfo.username == 'system:serviceaccount:%s:%s'", ns, sa)
	if len(conds) != 1 || conds[0].(map[string]any)["expression"] != want {
		t.Errorf("match conditions %v; want exactly %q: one comparison that cannot fail, so no one else is ever evaluated", conds, want)
	}
	if fp, _, _ := unstructured.NestedString(vap.Object, "spec", "failurePolicy"); fp != "Fail" {
		t.Errorf("failurePolicy %q; want Fail", fp)
	}
	vars, _, _ := unstructured.NestedSlice(vap.Object, "spec", "variables")
	ownLease := ""
	for _, v := range vars {
		if v.(map[string]any)["name"] == "ownLease" {
			ownLease, _ = v.(map[string]any)["expression"].(string)
		}
	}
	if !strings.Contains(ownLease, "request.namespace == '"+ns+"'") {
		t.Errorf("the leader-election Lease exemption %q is not limited to namespace %s", ownLease, ns)
	}
	policy, _, _ := unstructured.NestedString(binding.Object, "spec", "policyName")
	actions, _, _ := unstructured.NestedStringSlice(binding.Object, "spec", "validationActions")
	if policy != vap.GetName() || len(actions) != 1 || actions[0] != "Deny" {
		t.Errorf("binding to %q with actions %v; want %s with [Deny]", policy, actions, vap.GetName())
	}
}

// TestChartSelfRestraintNeedsTheAPI: on a cluster whose API list lacks
// ValidatingAdmissionPolicy v1 (helm install reads it from discovery; here
// --api-versions says so), the chart refuses to render unless told to go
// without the policy; older clusters are refused by the chart's kubeVersion.
func TestChartSelfRestraintNeedsTheAPI(t *testing.T) {
	without := []string{"--api-versions", "v1/Namespace"}
	tests := map[string]struct {
		args    []string
		wantErr []string
		wantVAP bool
	}{
		"by default (helm template knows no cluster)": {wantVAP: true},
		"a cluster that serves the API":               {args: append(without, "--api-versions", vapAPI), wantVAP: true},
		"a cluster without the API":                   {args: without, wantErr: []string{vapAPI, "--set selfRestraint.enabled=false"}},
		"a cluster without the API, told":             {args: append(without, "--set", "selfRestraint.enabled=false")},
		"turned off":                                  {args: []string{"--set", "selfRestraint.enabled=false"}},
		"Kubernetes 1.29":                             {args: []string{"--kube-version", "1.29.9"}, wantErr: []string{"kubeVersion", ">=1.30.0-0"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			args := append([]string{"template", "singleton-webhook", chartDir, "--namespace", systemNamespace}, chartTestValues()...)
			out, err := helm(t, append(args, tc.args...)...)
			if len(tc.wantErr) > 0 {
				if err == nil {
					t.Fatalf("rendered; want an error naming %q", tc.wantErr)
				}
				for _, w := range tc.wantErr {
					if !strings.Contains(out, w) {
						t.Errorf("error %q does not say %q", out, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			objs, err := decodeObjects([]byte(out))
			if err != nil {
				t.Fatal(err)
			}
			kinds := map[string]bool{}
			for _, o := range objs {
				kinds[o.GetKind()] = true
			}
			for _, k := range []string{"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"} {
				if kinds[k] != tc.wantVAP {
					t.Errorf("renders a %s: %v, want %v", k, kinds[k], tc.wantVAP)
				}
			}
			if !kinds["MutatingWebhookConfiguration"] {
				t.Errorf("the webhook configuration is missing")
			}
		})
	}
}

// TestChartSelfRestraintKustomizeComponent renders the kustomize overlay
// docs/install.md gives for such clusters: the base without the policy and
// its binding, everything else as is.
func TestChartSelfRestraintKustomizeComponent(t *testing.T) {
	root, err := testenv.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	kubectl, err := testenv.KubectlPath(root)
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(kubectl, "kustomize", withoutSelfRestraint(t, root)).CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl kustomize: %v\n%s", err, out)
	}
	objs, err := decodeObjects(out)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, o := range objs {
		got[o.GetKind()] = true
	}
	if got["ValidatingAdmissionPolicy"] || got["ValidatingAdmissionPolicyBinding"] {
		t.Errorf("the overlay still installs the self-restraint policy")
	}
	for _, k := range []string{"Deployment", "ClusterRole", "MutatingWebhookConfiguration"} {
		if !got[k] {
			t.Errorf("the overlay lost the %s", k)
		}
	}
}

// withoutSelfRestraint writes the overlay docs/install.md gives, over a
// copy of manifests/ (kustomize refuses absolute paths), and returns its
// directory.
func withoutSelfRestraint(t *testing.T, root string) string {
	t.Helper()
	dir := t.TempDir()
	if b, err := exec.Command("cp", "-R", filepath.Join(root, "manifests"), filepath.Join(dir, "base")).CombinedOutput(); err != nil {
		t.Fatalf("copy manifests/: %v\n%s", err, b)
	}
	overlay := "resources: [base]\ncomponents: [base/without-selfrestraint]\n"
	if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(overlay), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}
