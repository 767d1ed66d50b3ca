package webhook

import (
	"context"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/singleton-webhook/singleton-webhook/controllers"
	"github.com/singleton-webhook/singleton-webhook/patches"
)

// LeaseLookup returns the metadata of the Lease namespace/name, or nil and
// no error when there is none.
type LeaseLookup func(ctx context.Context, namespace, name string) (*metav1.PartialObjectMetadata, error)

// leaseLookupTimeout bounds the Lease lookup of one review, well within
// RequestTimeout: a slow API server costs the warning, never the answer.
const leaseLookupTimeout = time.Second

// CachedLease looks a Lease's metadata up in cache, the manager's cache,
// which holds only the Leases the election controllers made (labelled
// app.kubernetes.io/managed-by, see controllers.CacheByObject); a Lease it
// does not hold (none, one not made by the webhook, or one made a moment
// ago) is read from api, the API server, as metadata only: one GET. cache
// may be nil when the election controllers do not run (nothing else keeps
// a Lease informer): then every lookup is that GET.
func CachedLease(cache, api client.Reader) LeaseLookup {
	return func(ctx context.Context, namespace, name string) (*metav1.PartialObjectMetadata, error) {
		key := client.ObjectKey{Namespace: namespace, Name: name}
		if cache != nil {
			// The typed Lease, as the controllers read it: a metadata-only
			// read would start a second informer on Leases.
			l := &coordinationv1.Lease{}
			err := cache.Get(ctx, key, l)
			if err == nil {
				return &metav1.PartialObjectMetadata{ObjectMeta: l.ObjectMeta}, nil
			}
			if !apierrors.IsNotFound(err) {
				return nil, err
			}
		}
		m := &metav1.PartialObjectMetadata{}
		m.SetGroupVersionKind(coordinationv1.SchemeGroupVersion.WithKind("Lease"))
		err := api.Get(ctx, key, m)
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		return m, nil
	}
}

// leaseWarnings warns when d, an election-mode singleton as mutated, elects
// on a Lease that exists and that the election controllers will never grant
// its sidecar (controllers.LeaseConflict): made by another component, or by
// the webhook for another Deployment. Only a warning: the user may fix it
// later, and the controllers record the same conflict as a Warning Event.
// Without a lookup (offline review, standalone serve) or when the lookup
// fails, nothing is said; a failure is logged at V(1).
func (h *Deployments) leaseWarnings(ctx context.Context, namespace string, d *appsv1.Deployment, res patches.Result) []string {
	if h.Leases == nil || !res.Enforced || res.Mode != patches.ModeElection {
		return nil
	}
	name := controllers.LeaseName(d)
	if name == "" {
		return nil // generateName: no name yet, so no Lease of it either
	}
	if d.Namespace != "" {
		namespace = d.Namespace
	}
	lctx, cancel := context.WithTimeout(ctx, leaseLookupTimeout)
	defer cancel()
	lease, err := h.Leases(lctx, namespace, name)
	if err != nil {
		logf.FromContext(ctx).V(1).Info("could not look the election Lease up; no conflict warning",
			"lease", namespace+"/"+name, "error", err.Error())
		return nil
	}
	if lease == nil {
		return nil
	}
	whose := controllers.LeaseConflict(lease, d)
	if whose == "" {
		return nil
	}
	return []string{fmt.Sprintf("singleton: the leader-election Lease %s/%s exists and %s: "+
		"the webhook will not grant the elector sidecar access to it; "+
		"set %s to a name nothing else uses, or delete that Lease if nothing needs it",
		namespace, name, whose, patches.AnnotationLeaseName)}
}
