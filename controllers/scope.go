package controllers

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	"github.com/singleton-webhook/singleton-webhook/patches"
)

// Defaults of the Scope, as manifests/mutatingwebhook.yaml and the chart's
// values have them.
const (
	// NamespaceNameLabel is the label the API server sets on every
	// Namespace to its name; the webhook configuration excludes by it.
	NamespaceNameLabel = "kubernetes.io/metadata.name"
	// SystemNamespace is excluded always: the control plane must never wait
	// on the webhook.
	SystemNamespace = "kube-system"
	// OptOutLabel=OptOutValue on a Namespace opts it out of the webhook.
	OptOutLabel = patches.Prefix + "webhook"
	// OptOutValue is the value of OptOutLabel that opts a namespace out.
	OptOutValue = "disabled"
)

// Scope is where the controllers act: the namespaces whose Deployments the
// webhook configuration's namespaceSelector sends to admission. Outside it
// admission never mutates a Deployment, so the election controllers
// create, change and delete nothing there either (no Lease, Role,
// RoleBinding or leader Service) and the drift controller re-pins nothing.
// What they made before a namespace was opted out stays as it is, so
// running electors keep their Lease. The gate controller is the exception:
// a gated Pod is released wherever it is, as nothing else would lift it.
//
// Selector is the namespaceSelector itself: manifests/mutatingwebhook.yaml
// carries Selector() of DefaultScope("singleton-system"), a test holds them
// equal, and the chart passes the values it renders into its
// namespaceSelector to serve as flags. The zero Scope is every namespace.
type Scope struct {
	// Excluded are namespaces never acted in: kube-system and the webhook's
	// own, by default.
	Excluded []string
	// OptOutKey=OptOutValue on a Namespace opts it out; empty: no opt-out.
	OptOutKey, OptOutValue string
}

// DefaultScope is the Scope of a webhook running in namespace own (empty:
// unknown, only kube-system excluded) with the default opt-out label.
func DefaultScope(own string) Scope {
	s, err := NewScope(own, []string{SystemNamespace})
	if err == nil {
		s, err = s.WithOptOut(OptOutLabel + "=" + OptOutValue)
	}
	if err != nil {
		panic(fmt.Sprintf("default scope: %v", err)) // constants above; a test covers it
	}
	return s
}

// NewScope checks and builds a Scope excluding the webhook's own namespace
// and the excluded ones (namespace names; empty ones are skipped).
func NewScope(own string, excluded []string) (Scope, error) {
	s := Scope{}
	for _, ns := range append(slices.Clone(excluded), own) {
		ns = strings.TrimSpace(ns)
		if ns == "" || slices.Contains(s.Excluded, ns) {
			continue
		}
		if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
			return Scope{}, fmt.Errorf("namespace %q: %s", ns, strings.Join(errs, "; "))
		}
		s.Excluded = append(s.Excluded, ns)
	}
	return s, nil
}

// WithOptOut is s with the opt-out label "key=value" (empty: none).
func (s Scope) WithOptOut(label string) (Scope, error) {
	s.OptOutKey, s.OptOutValue = "", ""
	if label == "" {
		return s, nil
	}
	k, v, ok := strings.Cut(label, "=")
	if !ok {
		return Scope{}, fmt.Errorf("%q: want a label key=value, e.g. %s=%s", label, OptOutLabel, OptOutValue)
	}
	if errs := validation.IsQualifiedName(k); len(errs) > 0 {
		return Scope{}, fmt.Errorf("label key %q: %s", k, strings.Join(errs, "; "))
	}
	if v == "" {
		return Scope{}, fmt.Errorf("%q: want a non-empty label value, e.g. %s=%s", label, k, OptOutValue)
	}
	if errs := validation.IsValidLabelValue(v); len(errs) > 0 {
		return Scope{}, fmt.Errorf("label value %q: %s", v, strings.Join(errs, "; "))
	}
	s.OptOutKey, s.OptOutValue = k, v
	return s, nil
}

// Selector is the namespaceSelector of the webhook configuration for s.
func (s Scope) Selector() *metav1.LabelSelector {
	sel := &metav1.LabelSelector{}
	if len(s.Excluded) > 0 {
		sel.MatchExpressions = append(sel.MatchExpressions, metav1.LabelSelectorRequirement{
			Key: NamespaceNameLabel, Operator: metav1.LabelSelectorOpNotIn, Values: slices.Clone(s.Excluded)})
	}
	if s.OptOutKey != "" {
		sel.MatchExpressions = append(sel.MatchExpressions, metav1.LabelSelectorRequirement{
			Key: s.OptOutKey, Operator: metav1.LabelSelectorOpNotIn, Values: []string{s.OptOutValue}})
	}
	return sel
}

// Includes reports whether a Namespace of that name and labels is in s,
// as the API server evaluates the namespaceSelector.
func (s Scope) Includes(name string, nsLabels map[string]string) bool {
	set := labels.Set(maps.Clone(nsLabels))
	if set == nil {
		set = labels.Set{}
	}
	set[NamespaceNameLabel] = name // the API server sets it on every Namespace
	sel := labels.NewSelector()
	for _, e := range s.Selector().MatchExpressions {
		r, err := labels.NewRequirement(e.Key, selection.NotIn, e.Values)
		if err != nil {
			return false // NewScope validated them
		}
		sel = sel.Add(*r)
	}
	return sel.Matches(set)
}

// Contains reports whether the namespace ns is in s, reading its labels
// through r (metadata; the manager's cache). A namespace that is gone is
// not.
func (s Scope) Contains(ctx context.Context, r client.Reader, ns string) (bool, error) {
	if len(s.Excluded) == 0 && s.OptOutKey == "" {
		return true, nil
	}
	if slices.Contains(s.Excluded, ns) {
		return false, nil
	}
	m := namespaceMeta()
	if err := r.Get(ctx, client.ObjectKey{Name: ns}, m); err != nil {
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return false, fmt.Errorf("read namespace %s: %w", ns, err)
	}
	return s.Includes(ns, m.Labels), nil
}

// Predicate passes the events of objects in s, reading namespaces through
// r; on a read error it passes them, for the reconciler to decide.
func (s Scope) Predicate(r client.Reader) predicate.Predicate {
	return predicate.NewPredicateFuncs(func(o client.Object) bool {
		in, err := s.Contains(context.Background(), r, o.GetNamespace())
		return err != nil || in
	})
}

// namespaceMeta is an empty Namespace metadata object, as the controllers
// read and watch Namespaces.
func namespaceMeta() *metav1.PartialObjectMetadata {
	m := &metav1.PartialObjectMetadata{}
	m.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Namespace"))
	return m
}
