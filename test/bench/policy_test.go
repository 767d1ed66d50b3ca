//go:build bench

package bench

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/singleton-webhook/singleton-webhook/internal/benchdata"
	"github.com/singleton-webhook/singleton-webhook/internal/testenv"
	"github.com/singleton-webhook/singleton-webhook/patches"
)

// Figure 3's configurations without a webhook: the product's admission
// policies (--admission=policy), and the anchor, a MutatingAdmissionPolicy
// that only pins replicas and strategy: the least a policy does for a
// singleton. The two floors add to the anchor the least a policy-mode
// install that refuses and warns can validate with: a
// ValidatingAdmissionPolicy whose one validation is `true`, bound Deny, and
// another, bound Warn, whose two validations are `false` with constant
// messages, so that the CREATE gets as many warnings as through the
// product's. The third floor is the least a validation of the object costs:
// the anchor and a ValidatingAdmissionPolicy, bound Deny, whose one
// validation reads one field of the object. The product's operations,
// constant, are a MutatingAdmissionPolicy behind the product's condition
// that gives every Deployment the JSON Patch the product's gives the
// benchmark's, evaluating nothing else but the name: what the API server
// spends on writing a singleton (the pod template's gate and label, the
// annotations, the label), the policy counterpart of the webhook's
// constant answer; with the two floors, the least a policy-mode install
// that makes this object, refuses and warns pays.
const (
	policyConfig    = "policy admission"
	policyMutating  = "policy admission, its MutatingAdmissionPolicy alone"
	policyAnchor    = "MutatingAdmissionPolicy anchor (replicas, strategy)"
	policyDenyFloor = "anchor + a ValidatingAdmissionPolicy `true`, Deny"
	policyFloors    = "anchor + `true`, Deny + 2 constant warnings, Warn"
	policyReadFloor = "anchor + a ValidatingAdmissionPolicy reading one field of the object, Deny"
	policyOps       = "our operations, constant (a MutatingAdmissionPolicy with our condition)"
	policyOpsFloors = "our operations, constant + `true`, Deny + 2 constant warnings, Warn"
)

// policyWarnings is the number of warnings a CREATE of the benchmark's
// Deployment gets through the product's policies (replicas and strategy)
// and through the warning floor.
const policyWarnings = 2

// policySlugs are the labels of the policy configurations' Deployments.
type policySlugs struct {
	policy, mutating, anchor, denyFloor, floors, readFloor, ops, opsFloors string
}

// installPolicyConfigs installs the policies of the policy configurations,
// each bound to the objects labelled with its slug (the product's
// MutatingAdmissionPolicy to those of policy and mutating, its
// ValidatingAdmissionPolicies to those of policy only; the anchor to those
// of anchor and of the floors, the Deny floor to those of denyFloor,
// floors and opsFloors, the Warn floor to those of floors and opsFloors,
// the reading floor to those of readFloor, the constant operations to
// those of ops and opsFloors), and waits until the API server applies
// them and the constant operations make the object the product's policy
// makes.
func installPolicyConfigs(t *testing.T, env *testenv.Env, slugs policySlugs) {
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
	// The constant operations behind the product's condition: a policy
	// with a matchCondition has its expressions read the typed object; one
	// without converts the object for the one that reads its name.
	ops := anchor.DeepCopy()
	ops.Name = "bench-ops"
	ops.Spec.MatchConditions = ps.Mutating.Spec.MatchConditions
	ops.Spec.Mutations[0].JSONPatch.Expression = constantOperations(t)
	validating := func(name string, validations ...admissionregistrationv1.Validation) *admissionregistrationv1.ValidatingAdmissionPolicy {
		return &admissionregistrationv1.ValidatingAdmissionPolicy{ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: admissionregistrationv1.ValidatingAdmissionPolicySpec{MatchConstraints: ps.Validating.Spec.MatchConstraints, Validations: validations}}
	}
	denyFloor := validating("bench-floor-deny", admissionregistrationv1.Validation{Expression: "true"})
	readFloor := validating("bench-floor-read", admissionregistrationv1.Validation{Expression: "has(object.spec.template)"})
	warnFloor := validating("bench-floor-warn",
		admissionregistrationv1.Validation{Expression: "false", Message: "bench: the first constant warning"},
		admissionregistrationv1.Validation{Expression: "false", Message: "bench: the second constant warning"})
	binding := func(p *admissionregistrationv1.ValidatingAdmissionPolicy, action admissionregistrationv1.ValidationAction, slugs ...string) client.Object {
		return &admissionregistrationv1.ValidatingAdmissionPolicyBinding{ObjectMeta: metav1.ObjectMeta{Name: p.Name},
			Spec: admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec{PolicyName: p.Name, MatchResources: selector(slugs...),
				ValidationActions: []admissionregistrationv1.ValidationAction{action}}}
	}
	policySlug, mutatingSlug, anchorSlug := slugs.policy, slugs.mutating, slugs.anchor
	objs := []client.Object{ps.Mutating, ps.Validating, ps.Warnings, anchor, ops, denyFloor, warnFloor, readFloor,
		binding(denyFloor, admissionregistrationv1.Deny, slugs.denyFloor, slugs.floors, slugs.opsFloors),
		binding(readFloor, admissionregistrationv1.Deny, slugs.readFloor),
		binding(warnFloor, admissionregistrationv1.Warn, slugs.floors, slugs.opsFloors),
		&admissionregistrationv1.MutatingAdmissionPolicyBinding{ObjectMeta: metav1.ObjectMeta{Name: ops.Name},
			Spec: admissionregistrationv1.MutatingAdmissionPolicyBindingSpec{PolicyName: ops.Name, MatchResources: selector(slugs.ops, slugs.opsFloors)}},
		&admissionregistrationv1.MutatingAdmissionPolicyBinding{ObjectMeta: metav1.ObjectMeta{Name: ps.Mutating.Name},
			Spec: admissionregistrationv1.MutatingAdmissionPolicyBindingSpec{PolicyName: ps.Mutating.Name, MatchResources: selector(policySlug, mutatingSlug)}},
		&admissionregistrationv1.ValidatingAdmissionPolicyBinding{ObjectMeta: metav1.ObjectMeta{Name: ps.Validating.Name},
			Spec: admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec{PolicyName: ps.Validating.Name, MatchResources: selector(policySlug),
				ValidationActions: []admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny}}},
		&admissionregistrationv1.ValidatingAdmissionPolicyBinding{ObjectMeta: metav1.ObjectMeta{Name: ps.Warnings.Name},
			Spec: admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec{PolicyName: ps.Warnings.Name, MatchResources: selector(policySlug),
				ValidationActions: []admissionregistrationv1.ValidationAction{admissionregistrationv1.Warn}}},
		&admissionregistrationv1.MutatingAdmissionPolicyBinding{ObjectMeta: metav1.ObjectMeta{Name: anchor.Name},
			Spec: admissionregistrationv1.MutatingAdmissionPolicyBindingSpec{PolicyName: anchor.Name, MatchResources: selector(anchorSlug, slugs.denyFloor, slugs.floors, slugs.readFloor)}},
	}
	ctx := context.Background()
	for _, o := range objs {
		if err := env.Client.Create(ctx, o); err != nil {
			t.Fatalf("install %T %s: %v", o, o.GetName(), err)
		}
	}
	// In effect: the Deployment is pinned and gets its warnings.
	cfg := rest.CopyConfig(env.Config)
	warnings := &warningCounter{}
	cfg.WarningHandler = warnings
	deployments := kubernetes.NewForConfigOrDie(cfg).AppsV1().Deployments(benchNamespace)
	want := map[string]int64{policySlug: policyWarnings, slugs.floors: policyWarnings, slugs.opsFloors: policyWarnings}
	made := map[string]*appsv1.Deployment{}
	for _, slug := range []string{policySlug, mutatingSlug, anchorSlug, slugs.denyFloor, slugs.floors, slugs.readFloor, slugs.ops, slugs.opsFloors} {
		d := benchdata.Deployment(benchdata.RealisticContainers, benchdata.RealisticEnvs)
		d.Namespace, d.Name = benchNamespace, slug+"-probe"
		d.Labels[benchLabel] = slug
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			before := warnings.n.Load()
			got, err := deployments.Create(ctx, d.DeepCopy(), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
			if err == nil && ptr.Deref(got.Spec.Replicas, 0) == 1 && warnings.n.Load()-before == want[slug] {
				made[slug] = got
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the policies of %q are not in effect (last: %v)", slug, err)
			}
		}
	}
	for _, slug := range []string{slugs.ops, slugs.opsFloors} {
		if diff := sameSingleton(made[policySlug], made[slug]); diff != "" {
			t.Fatalf("the constant operations of %q do not make the object the product's policy makes: %s", slug, diff)
		}
	}
}

// constantOperations is, as a constant JSON Patch expression, what the
// product's MutatingAdmissionPolicy gives the benchmark's Deployment, the
// pod label's value (the Deployment's name) read from the object: the
// operations in the order and form its mutation writes them
// (patches/celpatch.go), the values from patches.Apply.
func constantOperations(t *testing.T) string {
	d := benchdata.Deployment(benchdata.RealisticContainers, benchdata.RealisticEnvs)
	if _, err := patches.Apply(d, patches.Policy{}); err != nil {
		t.Fatal(err)
	}
	pointer := func(key string) string { return strings.ReplaceAll(key, "/", "~1") }
	op := func(op, path, value string) string {
		return fmt.Sprintf("JSONPatch{op: %q, path: %q, value: %s}", op, path, value)
	}
	return "[" + strings.Join([]string{
		op("add", "/metadata/annotations/"+pointer(patches.AnnotationOriginalReplicas), strconv.Quote(d.Annotations[patches.AnnotationOriginalReplicas])),
		op("replace", "/spec/replicas", "1"),
		op("add", "/metadata/annotations/"+pointer(patches.AnnotationOriginalStrategy), strconv.Quote(d.Annotations[patches.AnnotationOriginalStrategy])),
		op("add", "/spec/strategy", fmt.Sprintf("{'type': %q}", d.Spec.Strategy.Type)),
		op("add", "/spec/template/spec/schedulingGates", fmt.Sprintf("[{'name': %q}]", patches.GateOneAtATime)),
		op("add", "/spec/template/metadata/labels/"+pointer(patches.LabelDeployment), "object.metadata.name"),
		op("add", "/metadata/labels/"+pointer(patches.LabelMode), strconv.Quote(d.Labels[patches.LabelMode])),
	}, ", ") + "]"
}

// sameSingleton says how b, created by another configuration, differs from
// a in what admission wrote (labels but the benchmark's, annotations, spec),
// the pod label's value being each one's name; empty when it does not.
func sameSingleton(a, b *appsv1.Deployment) string {
	norm := func(d *appsv1.Deployment) *appsv1.Deployment {
		d = d.DeepCopy()
		if d.Spec.Template.Labels[patches.LabelDeployment] != d.Name {
			return d
		}
		delete(d.Labels, benchLabel)
		d.Spec.Template.Labels[patches.LabelDeployment] = ""
		return d
	}
	na, nb := norm(a), norm(b)
	for _, c := range []struct {
		what string
		a, b any
	}{{"labels", na.Labels, nb.Labels}, {"annotations", na.Annotations, nb.Annotations}, {"spec", na.Spec, nb.Spec}} {
		if !equality.Semantic.DeepEqual(c.a, c.b) {
			return fmt.Sprintf("%s: %+v, not %+v", c.what, c.b, c.a)
		}
	}
	return ""
}
