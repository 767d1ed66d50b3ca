package elector

import (
	"context"
	"fmt"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
)

// watchTimeoutSeconds makes the API server end a watch, which is then
// opened again, so a silently broken connection does not last.
const watchTimeoutSeconds int64 = 300

// watchLease wakes the standby as soon as the Lease is released (its holder
// emptied) or deleted, instead of letting it wait for its next retry: up to
// 2.2 × the retry period, as client-go adds up to 1.2 × of jitter. It adds
// no write and no decision: the woken standby runs client-go's usual
// acquisition, which takes an empty Lease only through a write conditioned
// on the Lease's resourceVersion. If the watch is forbidden, it gives up and
// the retry period applies.
func (e *Elector) watchLease(ctx context.Context) {
	log := logf.FromContext(ctx)
	leases := e.client.CoordinationV1().Leases(e.cfg.LeaseNamespace)
	timeout := watchTimeoutSeconds
	opts := metav1.ListOptions{
		FieldSelector:  fields.OneTermEqualSelector("metadata.name", e.cfg.LeaseName).String(),
		TimeoutSeconds: &timeout,
	}
	for ctx.Err() == nil {
		w, err := leases.Watch(ctx, opts)
		if err == nil {
			err = e.consume(w)
		}
		if apierrors.IsForbidden(err) {
			log.Info("Cannot watch the lease; standbys retry at the retry period", "err", err.Error())
			return
		}
		if err != nil && ctx.Err() == nil {
			log.V(1).Info("Lease watch ended", "err", err.Error())
		}
		sleep(ctx, e.cfg.RetryPeriod)
	}
}

// consume reads watch events until the watch ends.
func (e *Elector) consume(w watch.Interface) error {
	defer w.Stop()
	for ev := range w.ResultChan() {
		switch ev.Type {
		case watch.Error:
			return fmt.Errorf("watch lease: %w", apierrors.FromObject(ev.Object))
		case watch.Deleted:
			e.wake()
		case watch.Added, watch.Modified:
			if l, ok := ev.Object.(*coordinationv1.Lease); ok && (l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity == "") {
				e.wake()
			}
		}
	}
	return nil
}
