//go:build bench

package bench

import (
	"context"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/singleton-webhook/singleton-webhook/internal/benchdata"
	"github.com/singleton-webhook/singleton-webhook/internal/testenv"
	"github.com/singleton-webhook/singleton-webhook/patches"
)

// Figure 3's configurations without a webhook: the product's admission
// policies (--admission=policy), and the anchor, a MutatingAdmissionPolicy
// that only pins replicas and strategy: the least a policy does for a
// singleton.
const (
	policyConfig   = "policy admission"
	policyMutating = "policy admission, its MutatingAdmissionPolicy alone"
	policyAnchor   = "MutatingAdmissionPolicy anchor (replicas, strategy)"
)

// installPolicyConfigs installs the policies of the three configurations,
// each bound to the objects labelled with its slug (the product's
// MutatingAdmissionPolicy to those of policySlug and mutatingSlug, its
// ValidatingAdmissionPolicies to those of policySlug only), and waits until
// the API server applies them.
func installPolicyConfigs(t *testing.T, env *testenv.Env, policySlug, mutatingSlug, anchorSlug string) {
	ps, err := patches.NewAdmissionPolicies(patches.Policy{})
	if err != nil {
		t.Fatal(err)
	}
	selector := func(slugs ...string) *admissionregistrationv1.MatchResources {
		return &admissionregistrationv1.MatchResources{ObjectSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
			{Key: benchLabel, Operator: metav1.LabelSelectorOpIn, Values: slugs}}}}
	}
	anchor := ps.Mutating.DeepCopy()
	anchor.Name = "bench-anchor"
	anchor.Spec.Variables = nil
	anchor.Spec.MatchConditions = nil
	anchor.Spec.Mutations = []admissionregistrationv1.Mutation{{
		PatchType: admissionregistrationv1.PatchTypeJSONPatch,
		JSONPatch: &admissionregistrationv1.JSONPatch{Expression: "[JSONPatch{op: 'replace', path: '/spec/replicas', value: 1}, " +
			"JSONPatch{op: 'replace', path: '/spec/strategy', value: {'type': 'Recreate'}}]"},
	}}
	objs := []client.Object{ps.Mutating, ps.Validating, ps.Warnings, anchor,
		&admissionregistrationv1.MutatingAdmissionPolicyBinding{ObjectMeta: metav1.ObjectMeta{Name: ps.Mutating.Name},
			Spec: admissionregistrationv1.MutatingAdmissionPolicyBindingSpec{PolicyName: ps.Mutating.Name, MatchResources: selector(policySlug, mutatingSlug)}},
		&admissionregistrationv1.ValidatingAdmissionPolicyBinding{ObjectMeta: metav1.ObjectMeta{Name: ps.Validating.Name},
			Spec: admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec{PolicyName: ps.Validating.Name, MatchResources: selector(policySlug),
				ValidationActions: []admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny}}},
		&admissionregistrationv1.ValidatingAdmissionPolicyBinding{ObjectMeta: metav1.ObjectMeta{Name: ps.Warnings.Name},
			Spec: admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec{PolicyName: ps.Warnings.Name, MatchResources: selector(policySlug),
				ValidationActions: []admissionregistrationv1.ValidationAction{admissionregistrationv1.Warn}}},
		&admissionregistrationv1.MutatingAdmissionPolicyBinding{ObjectMeta: metav1.ObjectMeta{Name: anchor.Name},
			Spec: admissionregistrationv1.MutatingAdmissionPolicyBindingSpec{PolicyName: anchor.Name, MatchResources: selector(anchorSlug)}},
	}
	ctx := context.Background()
	for _, o := range objs {
		if err := env.Client.Create(ctx, o); err != nil {
			t.Fatalf("install %T %s: %v", o, o.GetName(), err)
		}
	}
	for _, slug := range []string{policySlug, mutatingSlug, anchorSlug} {
		d := benchdata.Deployment(benchdata.RealisticContainers, benchdata.RealisticEnvs)
		d.Namespace, d.Name = benchNamespace, slug+"-probe"
		d.Labels[benchLabel] = slug
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			got, err := env.Clientset.AppsV1().Deployments(benchNamespace).Create(ctx, d.DeepCopy(), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
			if err == nil && ptr.Deref(got.Spec.Replicas, 0) == 1 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the policies of %q are not in effect (last: %v)", slug, err)
			}
		}
	}
}
