package controllers

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/singleton-webhook/singleton-webhook/patches"
)

// Names of the elector's RBAC.
const (
	// RoleBindingPrefix starts the names of the Role and the RoleBinding
	// kept for each election-mode Deployment; the Deployment's name follows.
	RoleBindingPrefix = "singleton-elector-"
	// DefaultServiceAccount is the ServiceAccount of a pod that names none.
	DefaultServiceAccount = "default"
)

// ElectorRBAC keeps, for each Deployment whose pods run the elector
// sidecar, what the sidecar needs and nothing more:
//
//   - the Lease, created by the controller (labelled ManagedByLabel, owned
//     by the Deployment), so the sidecar needs no "create";
//   - a Role singleton-elector-<deployment> granting get, update and watch
//     on that one Lease, by name;
//   - a RoleBinding of that Role to the pods' ServiceAccount.
//
// The Role and the RoleBinding are restored when edited or deleted, and
// deleted when the Deployment leaves election mode; the garbage collector
// removes all three with the Deployment. A request is a
// Deployment. Nothing is written during admission: the objects appear
// right after the Deployment, before its pods have pulled their images.
type ElectorRBAC struct {
	// Client writes the objects.
	Client client.Client
	// Reader reads full Deployments, and objects the Owned cache does not
	// hold yet, from the API server.
	Reader client.Reader
	// Owned reads the Roles, RoleBindings and Leases carrying ManagedByLabel.
	Owned client.Reader
	// Policy is the cluster-wide policy (the default mode).
	Policy patches.Policy
	// Recorder records the objects made as Events on the Deployments.
	Recorder events.EventRecorder
}

// Reconcile implements reconcile.Reconciler.
func (r *ElectorRBAC) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	d := &appsv1.Deployment{}
	err := r.Reader.Get(ctx, req.NamespacedName, d)
	if apierrors.IsNotFound(err) {
		return ctrl.Result{}, r.cleanup(ctx, req.Namespace, req.Name)
	}
	if err != nil {
		return ctrl.Result{}, fmt.Errorf("read deployment %s: %w", req, err)
	}
	_, injected := d.Spec.Template.Annotations[patches.AnnotationInjected]
	if d.DeletionTimestamp != nil || !runsElector(injected, d.Annotations, r.Policy) {
		return ctrl.Result{}, r.cleanup(ctx, d.Namespace, d.Name)
	}
	lease := LeaseName(d)
	if err := r.ensureLease(ctx, d, lease); err != nil {
		return ctrl.Result{}, err
	}
	if err := r.ensureRole(ctx, d, electorRole(d, lease)); err != nil {
		return ctrl.Result{}, err
	}
	return ctrl.Result{}, r.ensureBinding(ctx, d, electorBinding(d))
}

// LeaseName is the Lease of an election-mode Deployment: its
// singleton.dev/lease-name annotation, else its name.
func LeaseName(d metav1.Object) string {
	if v := d.GetAnnotations()[patches.AnnotationLeaseName]; v != "" {
		return v
	}
	return d.GetName()
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

// ownedMeta is the metadata of an object kept for d.
func ownedMeta(d *appsv1.Deployment, name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{
		Name: name, Namespace: d.Namespace,
		Labels: map[string]string{ManagedByLabel: ManagedBy},
		OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(d,
			appsv1.SchemeGroupVersion.WithKind("Deployment"))},
	}
}

// electorRole grants the sidecar what client-go's election does with one
// Lease, named: read it, renew or take it over (update), and watch it.
func electorRole(d *appsv1.Deployment, lease string) *rbacv1.Role {
	return &rbacv1.Role{
		ObjectMeta: ownedMeta(d, RoleBindingPrefix+d.Name),
		Rules: []rbacv1.PolicyRule{{
			APIGroups: []string{coordinationv1.GroupName}, Resources: []string{"leases"},
			ResourceNames: []string{lease}, Verbs: []string{"get", "update", "watch"},
		}},
	}
}

// electorBinding binds electorRole to the ServiceAccount of d's pods.
func electorBinding(d *appsv1.Deployment) *rbacv1.RoleBinding {
	return &rbacv1.RoleBinding{
		ObjectMeta: ownedMeta(d, RoleBindingPrefix+d.Name),
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: RoleBindingPrefix + d.Name},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind,
			Name: serviceAccountOf(&d.Spec.Template.Spec), Namespace: d.Namespace}},
	}
}

// ensureLease creates the Lease if it does not exist. A Lease of that name
// the controller did not create is adopted (labelled, so the role label
// controller sees it) but not made owned by the Deployment.
func (r *ElectorRBAC) ensureLease(ctx context.Context, d *appsv1.Deployment, name string) error {
	have := &coordinationv1.Lease{}
	err := r.Owned.Get(ctx, client.ObjectKey{Namespace: d.Namespace, Name: name}, have)
	if err == nil {
		return nil
	}
	if !apierrors.IsNotFound(err) {
		return fmt.Errorf("read lease %s: %w", name, err)
	}
	err = r.Client.Create(ctx, &coordinationv1.Lease{ObjectMeta: ownedMeta(d, name)})
	if err == nil {
		logf.FromContext(ctx).Info("created the elector's lease", "lease", name)
		r.Recorder.Eventf(d, nil, corev1.EventTypeNormal, "ElectorLeaseCreated", "Create",
			"Lease %s created for the leader-election sidecar", name)
		return nil
	}
	if !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create lease %s: %w", name, err)
	}
	if err := r.Reader.Get(ctx, client.ObjectKey{Namespace: d.Namespace, Name: name}, have); err != nil {
		return fmt.Errorf("read lease %s: %w", name, err)
	}
	if managed(have) {
		return nil // ours, the cache had not seen it yet
	}
	adopted := have.DeepCopy()
	if adopted.Labels == nil {
		adopted.Labels = map[string]string{}
	}
	adopted.Labels[ManagedByLabel] = ManagedBy
	if err := r.Client.Update(ctx, adopted); err != nil {
		return fmt.Errorf("adopt lease %s: %w", name, err)
	}
	return nil
}
