package controllers

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

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
// removes all three with the Deployment. A request is a Deployment.
// Nothing is written during admission: the objects appear right after the
// Deployment, before its pods have pulled their images.
//
// An object of one of those names that the webhook did not make for this
// Deployment (owned.go) is never touched. A Lease in the way, made by
// someone else or for another singleton, is never granted either: the
// Role is neither created nor pointed at it, so the app's ServiceAccount
// gets no access to it, and the Deployment gets a Warning Event.
type ElectorRBAC struct {
	// Client writes the objects and reads them from the manager's cache,
	// which holds only objects labelled ManagedByLabel.
	Client client.Client
	// Reader reads full Deployments, and objects the cache does not hold,
	// from the API server.
	Reader client.Reader
	// Policy is the cluster-wide policy (the default mode).
	Policy patches.Policy
	// Scope is where the controller acts; elsewhere it changes nothing.
	Scope Scope
	// Namespaces reads Namespace metadata for Scope (the manager's cache).
	Namespaces client.Reader
	// Recorder records the objects made, and conflicts, as Events on the
	// Deployments.
	Recorder events.EventRecorder
}

// Kinds of the objects ElectorRBAC keeps, for its Events.
var (
	leaseKept = kept{kind: "Lease", reason: "ElectorLeaseConflict",
		remedy:  "the sidecar gets no access to it: set " + patches.AnnotationLeaseName + " to a name nothing else uses",
		created: "ElectorLeaseCreated", createdNote: "created for the leader-election sidecar", undeletable: true}
	roleKept = kept{kind: "Role", reason: "ElectorRBACConflict",
		remedy: "rename or delete it so the leader-election sidecar gets its RBAC"}
	bindingKept = kept{kind: "RoleBinding", reason: "ElectorRBACConflict",
		remedy: "rename or delete it so the leader-election sidecar gets its RBAC"}
)

// Reconcile implements reconcile.Reconciler.
func (r *ElectorRBAC) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	if in, err := r.Scope.Contains(ctx, r.Namespaces, req.Namespace); err != nil || !in {
		return ctrl.Result{}, err
	}
	k := keeper{Client: r.Client, Reader: r.Reader, Recorder: r.Recorder}
	d := &appsv1.Deployment{}
	err := r.Reader.Get(ctx, req.NamespacedName, d)
	if apierrors.IsNotFound(err) {
		return ctrl.Result{}, r.cleanup(ctx, k, req.Namespace, req.Name, nil)
	}
	if err != nil {
		return ctrl.Result{}, fmt.Errorf("read deployment %s: %w", req, err)
	}
	_, injected := d.Spec.Template.Annotations[patches.AnnotationInjected]
	if d.DeletionTimestamp != nil || !runsElector(injected, d.Annotations, r.Policy) {
		return ctrl.Result{}, r.cleanup(ctx, k, d.Namespace, d.Name, d)
	}
	lease := LeaseName(d)
	res, err := k.ensure(ctx, d, &coordinationv1.Lease{ObjectMeta: objectMeta(d, lease)}, leaseKept, func() error { return nil })
	if err != nil || res == notOurs {
		// Not our Lease: no Role may name it. One we kept for an earlier
		// lease name stays as it is until the Lease is ours.
		return ctrl.Result{}, err
	}
	if err := r.ensureRole(ctx, k, d, lease); err != nil {
		return ctrl.Result{}, err
	}
	return ctrl.Result{}, r.ensureBinding(ctx, k, d)
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

// objectMeta names an object kept for d.
func objectMeta(d *appsv1.Deployment, name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: d.Namespace}
}
