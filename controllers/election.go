package controllers

import (
	"context"
	"fmt"
	"maps"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/singleton-webhook/singleton-webhook/patches"
)

// Labels of the objects the election controllers create. They only ever
// update or delete objects that carry ManagedByLabel=ManagedBy.
const (
	// ManagedByLabel is the well-known label naming an object's manager.
	ManagedByLabel = "app.kubernetes.io/managed-by"
	// ManagedBy is the value of ManagedByLabel on our objects.
	ManagedBy = "singleton-webhook"
)

// eventSource names the election controllers in the Events they record.
const eventSource = "singleton-webhook"

// deploymentGVK is the kind of the metadata-only Deployments read from the
// manager's cache.
var deploymentGVK = appsv1.SchemeGroupVersion.WithKind("Deployment")

// SetupElection registers the election-mode controllers with the manager:
// ElectorRBAC (the Lease, a Role and a RoleBinding per Deployment running
// the sidecar), RoleLabel (the Pods' role label, from the Lease) and
// LeaderService (the <deployment>-leader Service).
//
// They watch Deployment metadata through the manager's cache, the same
// metadata-only informer the drift controller and the scale handler use,
// and read a full Deployment from the API server only when they need its
// spec. The Roles, RoleBindings, Leases and Services they own are watched
// through a cache of their own, restricted to ManagedByLabel, so the
// process never holds every such object of the cluster. Pods come from the
// manager's cache, which the binary restricts to the Pods of singletons
// (PodCacheOptions).
func SetupElection(mgr ctrl.Manager, p patches.Policy) error {
	owned, err := cache.New(mgr.GetConfig(), cache.Options{
		HTTPClient:           mgr.GetHTTPClient(),
		Scheme:               mgr.GetScheme(),
		Mapper:               mgr.GetRESTMapper(),
		DefaultLabelSelector: labels.SelectorFromSet(labels.Set{ManagedByLabel: ManagedBy}),
		DefaultTransform:     cache.TransformStripManagedFields(),
	})
	if err != nil {
		return fmt.Errorf("set up election controllers: create cache of owned objects: %w", err)
	}
	if err := mgr.Add(owned); err != nil {
		return fmt.Errorf("set up election controllers: add cache of owned objects: %w", err)
	}
	recorder := mgr.GetEventRecorder(eventSource)
	byOwner := func(o client.Object) source.Source {
		return source.Kind(owned, o, handler.EnqueueRequestForOwner(mgr.GetScheme(), mgr.GetRESTMapper(),
			&appsv1.Deployment{}, handler.OnlyControllerOwner()))
	}
	rbac := &ElectorRBAC{Client: mgr.GetClient(), Reader: mgr.GetAPIReader(), Owned: owned, Policy: p, Recorder: recorder}
	err = ctrl.NewControllerManagedBy(mgr).
		Named("singleton-elector-rbac").
		For(&appsv1.Deployment{}, builder.OnlyMetadata, builder.WithPredicates(electionEvents())).
		WatchesRawSource(byOwner(&rbacv1.Role{})).
		WatchesRawSource(byOwner(&rbacv1.RoleBinding{})).
		WatchesRawSource(byOwner(&coordinationv1.Lease{})).
		Complete(rbac)
	if err != nil {
		return fmt.Errorf("set up elector RBAC controller: %w", err)
	}
	if err := setupRoleLabel(mgr, owned, p); err != nil {
		return err
	}
	svc := &LeaderService{Client: mgr.GetClient(), Reader: mgr.GetAPIReader(), Deployments: mgr.GetCache(),
		Owned: owned, Policy: p, Recorder: recorder}
	err = ctrl.NewControllerManagedBy(mgr).
		Named("singleton-leader-service").
		For(&appsv1.Deployment{}, builder.OnlyMetadata, builder.WithPredicates(electionEvents())).
		WatchesRawSource(source.Kind(owned, &corev1.Service{},
			handler.TypedEnqueueRequestForOwner[*corev1.Service](mgr.GetScheme(), mgr.GetRESTMapper(),
				&appsv1.Deployment{}, handler.OnlyControllerOwner()))).
		Complete(svc)
	if err != nil {
		return fmt.Errorf("set up leader Service controller: %w", err)
	}
	return nil
}

// setupRoleLabel registers the RoleLabel controller: a Deployment is
// reconciled when it changes, when one of its Pods does, and when its
// Lease does (found by name, as an adopted Lease has no owner).
func setupRoleLabel(mgr ctrl.Manager, owned cache.Cache, p patches.Policy) error {
	deployments := mgr.GetCache()
	byLease := func(ctx context.Context, l *coordinationv1.Lease) []reconcile.Request {
		list := &metav1.PartialObjectMetadataList{}
		list.SetGroupVersionKind(appsv1.SchemeGroupVersion.WithKind("DeploymentList"))
		if err := deployments.List(ctx, list, client.InNamespace(l.Namespace), client.UnsafeDisableDeepCopy); err != nil {
			return nil
		}
		var out []reconcile.Request
		for i := range list.Items {
			if m := &list.Items[i]; mayRunElector(m.Annotations) && LeaseName(m) == l.Name {
				out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: m.Namespace, Name: m.Name}})
			}
		}
		return out
	}
	rl := &RoleLabel{Client: mgr.GetClient(), Deployments: deployments, Owned: owned, Policy: p}
	err := ctrl.NewControllerManagedBy(mgr).
		Named("singleton-role-label").
		For(&appsv1.Deployment{}, builder.OnlyMetadata, builder.WithPredicates(electionEvents())).
		Watches(&corev1.Pod{}, handler.EnqueueRequestsFromMapFunc(podGroup)).
		WatchesRawSource(source.Kind(owned, &coordinationv1.Lease{}, handler.TypedEnqueueRequestsFromMapFunc(byLease))).
		Complete(rl)
	if err != nil {
		return fmt.Errorf("set up role label controller: %w", err)
	}
	return nil
}

// mayRunElector reports whether a Deployment's annotations make it worth
// reading in full: any singleton annotation. Without one, the webhook never
// sees the Deployment, and the controllers leave it alone.
func mayRunElector(annotations map[string]string) bool {
	for k := range annotations {
		if k == patches.AnnotationSingleton || strings.HasPrefix(k, patches.Prefix) {
			return true
		}
	}
	return false
}

// electionMode reports whether annotations make an election-mode singleton.
func electionMode(annotations map[string]string, p patches.Policy) bool {
	mode, enforced, err := patches.Resolve(annotations, p)
	return err == nil && enforced && mode == patches.ModeElection
}

// runsElector reports whether a Deployment's pods run the sidecar, or are
// about to: it is in election mode, or its pod template still carries the
// injection marker (the sidecar keeps needing its RBAC until it is removed).
func runsElector(injected bool, annotations map[string]string, p patches.Policy) bool {
	return injected || electionMode(annotations, p)
}

// electionEvents passes Deployment events that can change what the election
// controllers want: creations and deletions of Deployments with singleton
// annotations, and updates of their annotations, spec (generation) or
// deletion. Status-only updates, the bulk of Deployment traffic, are dropped.
func electionEvents() predicate.Predicate {
	relevant := func(o client.Object) bool { return mayRunElector(o.GetAnnotations()) }
	return predicate.Funcs{
		CreateFunc:  func(e event.CreateEvent) bool { return relevant(e.Object) },
		DeleteFunc:  func(e event.DeleteEvent) bool { return relevant(e.Object) },
		GenericFunc: func(e event.GenericEvent) bool { return relevant(e.Object) },
		UpdateFunc: func(e event.UpdateEvent) bool {
			o, n := e.ObjectOld, e.ObjectNew
			if !relevant(o) && !relevant(n) {
				return false
			}
			return o.GetGeneration() != n.GetGeneration() ||
				!maps.Equal(o.GetAnnotations(), n.GetAnnotations()) ||
				o.GetDeletionTimestamp().IsZero() != n.GetDeletionTimestamp().IsZero()
		},
	}
}

// managed reports whether an object carries our ManagedByLabel.
func managed(o metav1.Object) bool {
	return o.GetLabels()[ManagedByLabel] == ManagedBy
}
