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
	"k8s.io/apimachinery/pkg/api/equality"
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

// CacheByObject is the manager's cache configuration for what the
// controllers read: the Deployments admission labelled singletons
// (patches.LabelMode; typed or metadata-only, the selector holds for the
// kind), the Pods of singletons only (PodCacheOptions), and only the Roles,
// RoleBindings, Leases and Services labelled ManagedByLabel, so the process
// never holds every such object of the cluster: its memory grows with the
// singletons, not with the cluster. An object of
// those kinds that the cache does not hold is read from the API server
// when a create meets it (keeper.ensure).
func CacheByObject() map[client.Object]cache.ByObject {
	owned := cache.ByObject{Label: labels.SelectorFromSet(labels.Set{ManagedByLabel: ManagedBy})}
	return map[client.Object]cache.ByObject{
		&appsv1.Deployment{}:    {Label: patches.LabelModeSelector()},
		&corev1.Pod{}:           PodCacheOptions(),
		&rbacv1.Role{}:          owned,
		&rbacv1.RoleBinding{}:   owned,
		&coordinationv1.Lease{}: owned,
		&corev1.Service{}:       owned,
	}
}

// SetupElection registers the election-mode controllers with the manager,
// acting in scope only: ElectorRBAC (the Lease, a Role and a RoleBinding per
// Deployment running the sidecar), RoleLabel (the Pods' role label, from the
// Lease) and LeaderService (the <deployment>-leader Service).
//
// They watch Deployment metadata through the manager's cache, the same
// metadata-only informer the drift controller and the scale handler use,
// and read a full Deployment from the API server only when they need its
// spec. The objects they own, and the Pods, come from the manager's cache,
// which the binary configures with CacheByObject.
func SetupElection(mgr ctrl.Manager, p patches.Policy, scope Scope) error {
	recorder := mgr.GetEventRecorder(eventSource)
	deployments := mgr.GetCache()
	rbac := &ElectorRBAC{Client: mgr.GetClient(), Reader: mgr.GetAPIReader(), Policy: p, Scope: scope,
		Namespaces: deployments, Recorder: recorder}
	err := electionController(mgr, "singleton-elector-rbac", p).
		Owns(&rbacv1.Role{}).
		Owns(&rbacv1.RoleBinding{}).
		// Not the renewals of the sidecars: only what makes a Lease ours or not.
		Owns(&coordinationv1.Lease{}, builder.WithPredicates(ownershipEvents())).
		Complete(rbac)
	if err != nil {
		return fmt.Errorf("set up elector RBAC controller: %w", err)
	}
	if err := setupRoleLabel(mgr, p, scope); err != nil {
		return err
	}
	svc := &LeaderService{Client: mgr.GetClient(), Reader: mgr.GetAPIReader(), Deployments: deployments,
		Policy: p, Scope: scope, Namespaces: deployments, Recorder: recorder}
	if err := electionController(mgr, "singleton-leader-service", p).Owns(&corev1.Service{}).Complete(svc); err != nil {
		return fmt.Errorf("set up leader Service controller: %w", err)
	}
	return nil
}

// electionController starts a controller of election-mode Deployments: it
// reconciles a Deployment when its singleton settings change, and all of a
// namespace's when the namespace's labels do (it may have come into scope).
func electionController(mgr ctrl.Manager, name string, p patches.Policy) *builder.TypedBuilder[reconcile.Request] {
	return ctrl.NewControllerManagedBy(mgr).
		Named(name).
		For(&appsv1.Deployment{}, builder.OnlyMetadata, builder.WithPredicates(electionEvents(p))).
		Watches(namespaceMeta(), deploymentsOfNamespace(mgr.GetCache()), builder.WithPredicates(rescopeEvents()))
}

// setupRoleLabel registers the RoleLabel controller: a Deployment is
// reconciled when it changes, when one of its Pods does (podDeployments),
// and when its Lease does (its controller owner).
func setupRoleLabel(mgr ctrl.Manager, p patches.Policy, scope Scope) error {
	deployments := mgr.GetCache()
	rl := &RoleLabel{Client: mgr.GetClient(), Deployments: deployments, Policy: p, Scope: scope, Namespaces: deployments}
	err := electionController(mgr, "singleton-role-label", p).
		Watches(&corev1.Pod{}, handler.EnqueueRequestsFromMapFunc(podDeployments(deployments))).
		Owns(&coordinationv1.Lease{}).
		Complete(rl)
	if err != nil {
		return fmt.Errorf("set up role label controller: %w", err)
	}
	return nil
}

// podDeployments maps a Pod to the Deployment its LabelDeployment value
// names. The value is the name itself, up to 63 characters; a longer name's
// value ends in a hash (DeploymentLabelValue), and the Pod's namespace's
// Deployments in deployments (metadata, the manager's cache) are searched
// for it. No index: one would hold an entry per cached Deployment for the
// rare long name.
func podDeployments(deployments client.Reader) handler.MapFunc {
	return func(ctx context.Context, pod client.Object) []reconcile.Request {
		v, ok := pod.GetLabels()[patches.LabelDeployment]
		if !ok {
			return nil
		}
		out := []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: pod.GetNamespace(), Name: v}}}
		if !patches.MayBeShortened(v) {
			return out
		}
		list := &metav1.PartialObjectMetadataList{}
		list.SetGroupVersionKind(deploymentGVK.GroupVersion().WithKind("DeploymentList"))
		if err := deployments.List(ctx, list, client.InNamespace(pod.GetNamespace()), client.UnsafeDisableDeepCopy); err != nil {
			return out
		}
		for i := range list.Items {
			if n := list.Items[i].Name; n != v && patches.DeploymentLabelValue(n) == v {
				out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: pod.GetNamespace(), Name: n}})
			}
		}
		return out
	}
}

// deploymentMeta is an empty Deployment metadata object, as the
// controllers read and watch Deployments.
func deploymentMeta() *metav1.PartialObjectMetadata {
	m := &metav1.PartialObjectMetadata{}
	m.SetGroupVersionKind(deploymentGVK)
	return m
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
// controllers want: creations of election-mode Deployments under p,
// deletions of Deployments with singleton annotations, and updates of their
// annotations, spec (generation) or deletion. Status-only updates, the bulk
// of Deployment traffic, are dropped.
//
// A creation is also how the cache's first list reports every labelled
// Deployment at start: one in replicas mode wants nothing from these
// controllers but the removal of what they made for it while it was in
// election mode, and each of those objects (Lease, Role, RoleBinding,
// Service) is itself listed at start and queues its owner. So replicas-mode
// singletons cost these controllers no queue entry and no read at start.
func electionEvents(p patches.Policy) predicate.Predicate {
	relevant := func(o client.Object) bool { return mayRunElector(o.GetAnnotations()) }
	return predicate.Funcs{
		CreateFunc:  func(e event.CreateEvent) bool { return electionMode(e.Object.GetAnnotations(), p) },
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

// rescopeEvents passes the updates of a Namespace's labels: the moment it
// may have come into the Scope (or left it).
func rescopeEvents() predicate.Predicate {
	return predicate.Funcs{
		CreateFunc:  func(event.CreateEvent) bool { return false },
		DeleteFunc:  func(event.DeleteEvent) bool { return false },
		GenericFunc: func(event.GenericEvent) bool { return false },
		UpdateFunc: func(e event.UpdateEvent) bool {
			return !maps.Equal(e.ObjectOld.GetLabels(), e.ObjectNew.GetLabels())
		},
	}
}

// deploymentsOfNamespace maps a Namespace to its singleton Deployments,
// from the metadata in deployments (the manager's cache).
func deploymentsOfNamespace(deployments client.Reader) handler.EventHandler {
	return handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, ns client.Object) []reconcile.Request {
		list := &metav1.PartialObjectMetadataList{}
		list.SetGroupVersionKind(deploymentGVK.GroupVersion().WithKind("DeploymentList"))
		if err := deployments.List(ctx, list, client.InNamespace(ns.GetName()), client.UnsafeDisableDeepCopy); err != nil {
			return nil
		}
		var out []reconcile.Request
		for i := range list.Items {
			if m := &list.Items[i]; mayRunElector(m.Annotations) {
				out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: m.Namespace, Name: m.Name}})
			}
		}
		return out
	})
}

// ownershipEvents passes creations, deletions, and the updates that change
// an object's labels or owners: what decides whether it is ours.
func ownershipEvents() predicate.Predicate {
	return predicate.Funcs{
		UpdateFunc: func(e event.UpdateEvent) bool {
			o, n := e.ObjectOld, e.ObjectNew
			return !maps.Equal(o.GetLabels(), n.GetLabels()) ||
				!equality.Semantic.DeepEqual(o.GetOwnerReferences(), n.GetOwnerReferences()) ||
				o.GetDeletionTimestamp().IsZero() != n.GetDeletionTimestamp().IsZero()
		},
	}
}
