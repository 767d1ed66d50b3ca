package controllers

import (
	"context"
	"errors"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/singleton-webhook/singleton-webhook/patches"
)

// Drift re-applies the singleton policy to Deployments that drifted from it,
// typically scaled while the webhook was down (the deployments/scale entry is
// failurePolicy Ignore). It watches Deployment metadata only, of the
// singletons admission labelled (patches.LabelMode), the same metadata-only
// informer the scale handler reads, and fetches a full object only for
// singletons; StartList hands it the ones not labelled yet. The fix is an
// Update of the object as stored, which the webhook mutates like any other
// write, so the webhook configuration alone decides where singletons are
// enforced.
//
// After an upgrade the initial list and StartList pass every singleton
// through here:
// patches.Apply keeps an election sidecar another version injected (see
// patches/skew.go), and the webhook keeps it on the write back, whose pod
// template is unchanged, so a new version alone rewrites no template and
// rolls no Deployment. A released singleton (patches.AnnotationReleased) is
// not enforced, so it is never re-pinned either.
type Drift struct {
	// Client writes the fixed Deployment.
	Client client.Client
	// Reader reads full Deployments; the API server directly, so the cache
	// holds metadata only.
	Reader client.Reader
	// Policy is the cluster-wide policy, as the webhook applies it.
	Policy patches.Policy
}

// SetupDrift registers the drift controller with the manager, and the
// StartList that feeds it the singletons admission has not labelled yet, at
// start and when a namespace's labels change; both look at Deployments in
// scope only. The controller watches the labelled Deployments of the
// manager's cache (see CacheByObject).
func SetupDrift(mgr ctrl.Manager, p patches.Policy, scope Scope) error {
	r := &Drift{Client: mgr.GetClient(), Reader: mgr.GetAPIReader(), Policy: p}
	found := make(chan event.GenericEvent)
	start := &StartList{Reader: mgr.GetAPIReader(), Policy: p, Scope: scope, Namespaces: mgr.GetCache(), Found: found}
	err := ctrl.NewControllerManagedBy(mgr).
		Named("singleton-drift").
		For(&appsv1.Deployment{}, builder.OnlyMetadata,
			builder.WithPredicates(append(driftEvents(), scope.Predicate(mgr.GetCache()))...)).
		WatchesRawSource(source.Channel(found, &handler.EnqueueRequestForObject{})).
		// A namespace that comes into scope: its singletons admission did
		// not label while it was out.
		Watches(namespaceMeta(), start.InNamespace(), builder.WithPredicates(rescopeEvents())).
		Complete(r)
	if err != nil {
		return fmt.Errorf("set up drift controller: %w", err)
	}
	if err := mgr.Add(start); err != nil {
		return fmt.Errorf("set up the start list of the drift controller: %w", err)
	}
	return nil
}

// driftEvents are the events worth a look: those of singletons, and of
// their updates only the ones that changed the spec (the generation). The
// rest, status updates above all, which a rolling Deployment sends many of,
// cannot have made a singleton drift, and each would cost a read from the
// API server. Creates pass, the initial list at start among them: it finds
// what drifted while the webhook was down.
func driftEvents() []predicate.Predicate {
	return []predicate.Predicate{isSingleton(), predicate.GenerationChangedPredicate{}}
}

// isSingleton passes only objects carrying the trigger annotation.
func isSingleton() predicate.Predicate {
	return predicate.NewPredicateFuncs(func(o client.Object) bool {
		_, ok := o.GetAnnotations()[patches.AnnotationSingleton]
		return ok
	})
}

// Reconcile implements reconcile.Reconciler.
func (r *Drift) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	log := logf.FromContext(ctx)
	d := &appsv1.Deployment{}
	if err := r.Reader.Get(ctx, req.NamespacedName, d); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if d.DeletionTimestamp != nil {
		return ctrl.Result{}, nil
	}
	fixed := d.DeepCopy()
	res, err := patches.Apply(fixed, r.Policy)
	var deny *patches.DenyError
	if errors.As(err, &deny) && scaledUp(d, r.Policy) {
		// Deny mode rewrites nothing and would refuse the write back: write
		// the one replica itself, the only drift a scale can cause.
		d.Spec.Replicas = ptr.To[int32](1)
		res, err = patches.Result{Enforced: true, Warnings: []string{"spec.replicas set back to 1 (deny mode)"}}, nil
	}
	if err != nil {
		// The user must fix the annotations; the webhook says how on the next write.
		log.V(1).Info("not re-pinned: invalid singleton annotations", "reason", err.Error())
		return ctrl.Result{}, nil
	}
	if !res.Enforced || (deny == nil && equality.Semantic.DeepEqual(d, fixed)) {
		return ctrl.Result{}, nil
	}
	// Write the object back as it is, not as fixed: the API server passes
	// the write through the webhook only where the webhook configuration
	// applies (its namespaceSelector excludes kube-system, the webhook's own
	// namespace and opted-out namespaces), and the webhook pins it. Where the
	// configuration does not apply, the write changes nothing.
	before := d.ResourceVersion
	if err := r.Client.Update(ctx, d); err != nil {
		if apierrors.IsConflict(err) {
			// A newer write exists; its watch event queues this Deployment again.
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, fmt.Errorf("re-pin deployment: %w", err)
	}
	if d.ResourceVersion == before {
		log.V(1).Info("not re-pinned: the webhook configuration does not apply to it")
		return ctrl.Result{}, nil
	}
	log.Info("re-pinned singleton deployment that drifted", "changes", res.Warnings)
	return ctrl.Result{}, nil
}

// scaledUp reports whether d is a replicas-mode singleton with more than one
// replica.
func scaledUp(d *appsv1.Deployment, p patches.Policy) bool {
	mode, enforced, err := patches.Resolve(d.Annotations, p)
	return err == nil && enforced && mode == patches.ModeReplicas && d.Spec.Replicas != nil && *d.Spec.Replicas > 1
}
