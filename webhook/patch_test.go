package webhook

import (
	"context"
	"encoding/json"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"sigs.k8s.io/yaml"

	"github.com/singleton-webhook/singleton-webhook/patches"
)

// TestPatchMatchesDiffOracle checks the handler's derived operations against
// the general diff of the whole typed object before and after patches.Apply,
// on every golden case of package patches (their policies included) sent as
// a CREATE: both patches must turn the request into the same object.
func TestPatchMatchesDiffOracle(t *testing.T) {
	for _, c := range goldenCases(t) {
		t.Run(c.name, func(t *testing.T) {
			policy, _ := c.policy(t)
			raw := c.json
			resp := (&Deployments{Policy: policy}).Handle(context.Background(), deploymentRequest(admissionv1.Create, raw))
			before := &appsv1.Deployment{}
			if err := json.Unmarshal(raw, before); err != nil {
				t.Fatal(err)
			}
			after := before.DeepCopy()
			if _, err := patches.Apply(after, policy); err != nil {
				if resp.Allowed {
					t.Fatalf("Apply refuses (%v) but the handler allows", err)
				}
				return
			}
			if !resp.Allowed {
				t.Fatalf("the handler refuses: %v", resp.Result)
			}
			ops, err := diff(raw, before, after)
			if err != nil {
				t.Fatal(err)
			}
			oracle, err := json.Marshal(ops)
			if err != nil {
				t.Fatal(err)
			}
			got, want := &appsv1.Deployment{}, &appsv1.Deployment{}
			if err := json.Unmarshal(applyResponse(t, raw, resp), got); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(applyOpsJSON(t, raw, oracle), want); err != nil {
				t.Fatal(err)
			}
			// The typed objects are what the API server stores: a template
			// written whole carries empty fields ("resources": {}) the
			// oracle's minimal patch leaves out, with the same meaning.
			if !equality.Semantic.DeepEqual(got, want) {
				gy, _ := yaml.Marshal(got)
				wy, _ := yaml.Marshal(want)
				t.Errorf("the handler's patch and the oracle's differ\n--- handler:\n%s--- oracle:\n%s", gy, wy)
			}
		})
	}
}
