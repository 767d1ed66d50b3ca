package controllers

import (
	"context"
	"fmt"
	"sort"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/singleton-webhook/singleton-webhook/patches"
)

// Names of the elector's RBAC.
const (
	// ElectorClusterRole is the ClusterRole the sidecar needs
	// (manifests/elector-clusterrole.yaml).
	ElectorClusterRole = "singleton-elector"
	// RoleBindingPrefix starts the name of each RoleBinding the controller
	// keeps; the ServiceAccount's name follows.
	RoleBindingPrefix = "singleton-elector-"
	// DefaultServiceAccount is the ServiceAccount of a pod that names none.
	DefaultServiceAccount = "default"
)

// ElectorRBAC keeps, in each namespace, one RoleBinding to
// ElectorClusterRole per ServiceAccount whose pods run the elector sidecar:
// created when the first such Deployment appears, restored when deleted or
// edited, deleted when the last one is gone or leaves election mode. A
// request is a namespace (Name empty): the namespace is reconciled as a
// whole, so a deleted Deployment, whose ServiceAccount can no longer be
// read, is handled like any other change.
//
// Nothing is written during admission: the binding appears right after the
// Deployment, before its pods have pulled their images.
type ElectorRBAC struct {
	// Client writes the RoleBindings.
	Client client.Client
	// Reader reads full Deployments from the API server.
	Reader client.Reader
	// Deployments lists Deployment metadata (the manager's cache).
	Deployments client.Reader
	// Owned lists the RoleBindings carrying ManagedByLabel.
	Owned client.Reader
	// Policy is the cluster-wide policy (the default mode).
	Policy patches.Policy
	// Recorder records the bindings made as Events on the Deployments.
	Recorder events.EventRecorder

	memo specMemo
}

// Reconcile implements reconcile.Reconciler.
func (r *ElectorRBAC) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	ns := req.Namespace
	users, err := r.serviceAccounts(ctx, ns)
	if err != nil {
		return ctrl.Result{}, err
	}
	var owned rbacv1.RoleBindingList
	if err := r.Owned.List(ctx, &owned, client.InNamespace(ns)); err != nil {
		return ctrl.Result{}, fmt.Errorf("list elector role bindings: %w", err)
	}
	have := map[string]*rbacv1.RoleBinding{}
	for i := range owned.Items {
		have[owned.Items[i].Name] = &owned.Items[i]
	}
	for _, sa := range sortedKeys(users) {
		name := RoleBindingPrefix + sa
		if err := r.ensure(ctx, roleBinding(ns, sa), have[name], users[sa]); err != nil {
			return ctrl.Result{}, err
		}
		delete(have, name)
	}
	for _, rb := range have {
		if err := r.remove(ctx, rb); err != nil {
			return ctrl.Result{}, err
		}
	}
	return ctrl.Result{}, nil
}

// serviceAccounts maps each ServiceAccount of ns whose pods run the sidecar
// to the Deployments using it.
func (r *ElectorRBAC) serviceAccounts(ctx context.Context, ns string) (map[string][]*metav1.PartialObjectMetadata, error) {
	list := &metav1.PartialObjectMetadataList{}
	list.SetGroupVersionKind(appsv1.SchemeGroupVersion.WithKind("DeploymentList"))
	// Read-only use: no copy of every Deployment of the namespace per pass.
	if err := r.Deployments.List(ctx, list, client.InNamespace(ns), client.UnsafeDisableDeepCopy); err != nil {
		return nil, fmt.Errorf("list deployments: %w", err)
	}
	users := map[string][]*metav1.PartialObjectMetadata{}
	seen := map[types.UID]bool{}
	for i := range list.Items {
		m := &list.Items[i]
		if m.DeletionTimestamp != nil || !mayRunElector(m.Annotations) {
			continue
		}
		seen[m.UID] = true
		f, ok := r.memo.get(m.UID, m.Generation)
		if !ok {
			d := &appsv1.Deployment{}
			if err := r.Reader.Get(ctx, client.ObjectKeyFromObject(m), d); err != nil {
				if apierrors.IsNotFound(err) {
					continue
				}
				return nil, fmt.Errorf("read deployment %s: %w", m.Name, err)
			}
			f = r.memo.put(d)
		}
		if !runsElector(f.injected, m.Annotations, r.Policy) {
			continue
		}
		users[f.serviceAccount] = append(users[f.serviceAccount], deploymentRef(m))
	}
	r.memo.prune(ns, seen)
	return users, nil
}

// deploymentRef is a Deployment's identity, typed for Events; the cached
// object itself is shared and must not be modified.
func deploymentRef(m *metav1.PartialObjectMetadata) *metav1.PartialObjectMetadata {
	ref := &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{
		Name: m.Name, Namespace: m.Namespace, UID: m.UID, ResourceVersion: m.ResourceVersion}}
	ref.SetGroupVersionKind(appsv1.SchemeGroupVersion.WithKind("Deployment"))
	return ref
}

// serviceAccountOf is the ServiceAccount a pod runs as.
func serviceAccountOf(s *corev1.PodSpec) string {
	switch {
	case s.ServiceAccountName != "":
		return s.ServiceAccountName
	case s.DeprecatedServiceAccount != "":
		return s.DeprecatedServiceAccount
	}
	return DefaultServiceAccount
}

// roleBinding is the binding of one ServiceAccount to ElectorClusterRole.
func roleBinding(ns, sa string) *rbacv1.RoleBinding {
	return &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{
			Name: RoleBindingPrefix + sa, Namespace: ns,
			Labels: map[string]string{ManagedByLabel: ManagedBy},
		},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: ElectorClusterRole},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: sa, Namespace: ns}},
	}
}

// ensure makes the binding exist as wanted. have is our binding of that
// name, nil when the cache holds none.
func (r *ElectorRBAC) ensure(ctx context.Context, want, have *rbacv1.RoleBinding, users []*metav1.PartialObjectMetadata) error {
	log := logf.FromContext(ctx).WithValues("roleBinding", want.Name)
	if have == nil {
		return r.create(ctx, want, users)
	}
	if have.RoleRef != want.RoleRef {
		// roleRef is immutable: replace the binding.
		if err := r.remove(ctx, have); err != nil {
			return err
		}
		return r.create(ctx, want, users)
	}
	if equality.Semantic.DeepEqual(have.Subjects, want.Subjects) {
		return nil
	}
	fixed := have.DeepCopy()
	fixed.Subjects = want.Subjects
	if err := r.Client.Update(ctx, fixed); err != nil {
		return fmt.Errorf("restore subjects of role binding %s: %w", want.Name, err)
	}
	log.Info("restored the subjects of an elector role binding")
	return nil
}

// create creates the binding. When the name is taken by a binding the cache
// does not hold (unlabelled, or too recent), it adopts it if it grants the
// same role and leaves it alone otherwise.
func (r *ElectorRBAC) create(ctx context.Context, want *rbacv1.RoleBinding, users []*metav1.PartialObjectMetadata) error {
	log := logf.FromContext(ctx).WithValues("roleBinding", want.Name)
	err := r.Client.Create(ctx, want)
	if err == nil {
		log.Info("bound a ServiceAccount to the elector role", "serviceAccount", want.Subjects[0].Name)
		for _, d := range users {
			r.Recorder.Eventf(d, nil, corev1.EventTypeNormal, "ElectorRBACBound", "Bind",
				"RoleBinding %s grants ServiceAccount %s the ClusterRole %s the leader-election sidecar needs",
				want.Name, want.Subjects[0].Name, ElectorClusterRole)
		}
		return nil
	}
	if !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create role binding %s: %w", want.Name, err)
	}
	have := &rbacv1.RoleBinding{}
	if err := r.Reader.Get(ctx, client.ObjectKeyFromObject(want), have); err != nil {
		return fmt.Errorf("read role binding %s: %w", want.Name, err)
	}
	if have.RoleRef != want.RoleRef {
		log.Info("not touching a role binding of the same name that grants another role; the sidecar may lack its RBAC",
			"roleRef", have.RoleRef.Name)
		return nil
	}
	if managed(have) && equality.Semantic.DeepEqual(have.Subjects, want.Subjects) {
		return nil // ours, the cache had not seen it yet
	}
	adopted := have.DeepCopy()
	if adopted.Labels == nil {
		adopted.Labels = map[string]string{}
	}
	adopted.Labels[ManagedByLabel] = ManagedBy
	adopted.Subjects = want.Subjects
	if err := r.Client.Update(ctx, adopted); err != nil {
		return fmt.Errorf("adopt role binding %s: %w", want.Name, err)
	}
	log.Info("adopted an elector role binding")
	return nil
}

// remove deletes one of our bindings, only if it is still the object seen.
func (r *ElectorRBAC) remove(ctx context.Context, rb *rbacv1.RoleBinding) error {
	if !managed(rb) {
		return nil
	}
	err := r.Client.Delete(ctx, rb, client.Preconditions{UID: &rb.UID, ResourceVersion: &rb.ResourceVersion})
	switch {
	case apierrors.IsNotFound(err):
		return nil
	case apierrors.IsConflict(err):
		return nil // changed meanwhile: its watch event brings the namespace back
	case err != nil:
		return fmt.Errorf("delete role binding %s: %w", rb.Name, err)
	}
	logf.FromContext(ctx).Info("removed an elector role binding no Deployment needs", "roleBinding", rb.Name)
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
