package controllers

import (
	"context"
	"fmt"
	"maps"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
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

// SetupElection registers the election-mode controllers with the manager:
// ElectorRBAC (a RoleBinding per ServiceAccount running the sidecar) and
// LeaderService (the <deployment>-leader Service).
//
// Both watch Deployment metadata through the manager's cache, the same
// metadata-only informer the drift controller and the scale handler use,
// and read a full Deployment from the API server only for singletons. The
// RoleBindings and Services they own are watched through a cache of their
// own, restricted to ManagedByLabel, so the process never holds every
// RoleBinding or Service of the cluster.
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
	rbac := &ElectorRBAC{Client: mgr.GetClient(), Reader: mgr.GetAPIReader(), Deployments: mgr.GetCache(),
		Owned: owned, Policy: p, Recorder: recorder}
	err = ctrl.NewControllerManagedBy(mgr).
		Named("singleton-elector-rbac").
		WatchesMetadata(&appsv1.Deployment{}, handler.EnqueueRequestsFromMapFunc(namespaceRequest[client.Object]),
			builder.WithPredicates(electionEvents())).
		WatchesRawSource(source.Kind(owned, &rbacv1.RoleBinding{},
			handler.TypedEnqueueRequestsFromMapFunc(namespaceRequest[*rbacv1.RoleBinding]))).
		Complete(rbac)
	if err != nil {
		return fmt.Errorf("set up elector RBAC controller: %w", err)
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

// namespaceRequest maps an object to the request of its namespace: the RBAC
// controller reconciles a namespace as a whole.
func namespaceRequest[T client.Object](_ context.Context, o T) []reconcile.Request {
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: o.GetNamespace()}}}
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
