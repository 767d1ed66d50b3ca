package controllers

import (
	"context"
	"fmt"
	"runtime/debug"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/singleton-webhook/singleton-webhook/patches"
)

// StartListPageSize is how many Deployments one page of the start list
// holds: the process never holds more than one page of the cluster's
// Deployments at a time.
const StartListPageSize = 500

// startListRetry is the pause before the start list is tried again after
// a failed page.
const startListRetry = 5 * time.Second

// StartList finds, once per start of the controllers, the singletons
// admission has not labelled (patches.LabelMode): those annotated before the
// webhook was installed, or while an older version without the label ran.
// The controllers' caches hold only labelled Deployments, so nothing else
// would ever see them. It reads Deployment metadata from the API server in
// pages of PageSize (never a cache of all of them) and hands every annotated
// singleton in scope whose label is missing or stale to the drift
// controller, which writes it back through admission: it gains the label,
// and a singleton that drifted is pinned as well. A singleton that already
// conforms only gains the label, a metadata change that rolls nothing.
//
// A failed page starts the list again after a pause (a continue token may
// have expired), until the list completes or the context ends.
type StartList struct {
	// Reader lists Deployment metadata: the API server directly.
	Reader client.Reader
	// Policy resolves the mode a singleton's label must hold.
	Policy patches.Policy
	// Scope is where the controllers act.
	Scope Scope
	// Namespaces reads Namespace metadata for Scope (the manager's cache).
	Namespaces client.Reader
	// PageSize is the Limit of one page; StartListPageSize when 0.
	PageSize int64
	// Found receives the Deployments to write back.
	Found chan<- event.GenericEvent

	// retry is the pause after a failed page; startListRetry when 0.
	retry time.Duration
}

// NeedLeaderElection implements manager.LeaderElectionRunnable: the list
// runs where the drift controller runs.
func (s *StartList) NeedLeaderElection() bool { return true }

// Start implements manager.Runnable. It returns once the list completed
// (nil) or the context ended.
func (s *StartList) Start(ctx context.Context) error {
	log := logf.FromContext(ctx).WithName("start-list")
	retry := s.retry
	if retry == 0 {
		retry = startListRetry
	}
	for {
		listed, found, err := s.list(ctx)
		if err == nil {
			log.Info("listed the Deployments once for unlabelled singletons", "deployments", listed, "unlabelled", found)
			// The pages were the process's largest allocations, once: hand
			// them back to the system now rather than when the runtime's
			// background scavenger gets to them.
			debug.FreeOSMemory()
			return nil
		}
		if ctx.Err() != nil {
			return nil
		}
		log.Error(err, "list of Deployments failed; trying again", "after", retry)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(retry):
		}
	}
}

// list runs the paged list once, returning how many Deployments it saw
// and how many it handed on.
func (s *StartList) list(ctx context.Context) (listed, found int, err error) {
	listed, err = s.each(ctx, "", func(m *metav1.PartialObjectMetadata) error {
		select {
		case s.Found <- event.GenericEvent{Object: m}:
			found++
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	return listed, found, err
}

// each pages through the Deployment metadata of namespace (empty: all) and
// calls found with each unlabelled singleton in scope (its namespace and
// name only), returning how many Deployments it saw.
func (s *StartList) each(ctx context.Context, namespace string, found func(*metav1.PartialObjectMetadata) error) (listed int, err error) {
	size := s.PageSize
	if size <= 0 {
		size = StartListPageSize
	}
	page := &metav1.PartialObjectMetadataList{}
	page.SetGroupVersionKind(deploymentGVK.GroupVersion().WithKind("DeploymentList"))
	next := ""
	for {
		page.Items = nil
		if err := s.Reader.List(ctx, page, client.InNamespace(namespace), client.Limit(size), client.Continue(next)); err != nil {
			return listed, fmt.Errorf("list deployments: %w", err)
		}
		listed += len(page.Items)
		for i := range page.Items {
			m := &page.Items[i]
			if !s.unlabelled(m) {
				continue
			}
			in, err := s.Scope.Contains(ctx, s.Namespaces, m.Namespace)
			if err != nil {
				return listed, err
			}
			if !in {
				continue
			}
			o := deploymentMeta()
			o.ObjectMeta = metav1.ObjectMeta{Namespace: m.Namespace, Name: m.Name}
			if err := found(o); err != nil {
				return listed, err
			}
		}
		next = page.Continue
		if next == "" {
			return listed, nil
		}
	}
}

// InNamespace maps a Namespace whose labels changed (it may have come into
// the Scope) to the unlabelled singletons in it, read as the start list
// reads them: admission did not see them while the namespace was out of
// scope, and the cache does not hold them.
func (s *StartList) InNamespace() handler.EventHandler {
	return handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, ns client.Object) []reconcile.Request {
		var out []reconcile.Request
		_, err := s.each(ctx, ns.GetName(), func(m *metav1.PartialObjectMetadata) error {
			out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: m.Namespace, Name: m.Name}})
			return nil
		})
		if err != nil {
			logf.FromContext(ctx).Error(err, "list the unlabelled singletons of a namespace", "namespace", ns.GetName())
		}
		return out
	})
}

// unlabelled reports whether m is an enforced singleton without the label
// of its mode.
func (s *StartList) unlabelled(m *metav1.PartialObjectMetadata) bool {
	mode, enforced, err := patches.Resolve(m.Annotations, s.Policy)
	return err == nil && enforced && !patches.Labelled(m.Labels, mode)
}
