package controllers

import (
	"context"
	"errors"
	"fmt"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/singleton-webhook/singleton-webhook/internal/sidecar"
	"github.com/singleton-webhook/singleton-webhook/patches"
)

// RoleLabel keeps the label singleton.dev/role=leader|standby on the Pods of
// each election-mode Deployment, from the Deployment's Lease: the Pod named
// by the Lease's holder is the leader while the Lease is valid (its renew
// time plus its duration lies ahead), every other Pod is a standby. So the
// <deployment>-leader Service follows the Lease, and a leader cut off from
// the API server, which cannot renew, turns standby when its Lease
// expires: the controller requeues itself for that moment. The sidecar
// needs no Pod permissions for it.
//
// Within one pass standbys are labelled first, so that two Pods never say
// leader because of this controller, and each patch carries the
// resourceVersion of the Pod it was decided from: a Pod changed since (by
// another, stale controller leader among others) is not labelled from an
// old view, its event brings a fresh pass. The label is for routing only:
// it follows the Lease with the API server's and the controller's delays,
// and applications decide with the sidecar's signals and the epoch.
//
// Only a Lease the webhook made for this Deployment counts (owned.go): with
// a Lease of that name made by someone else, or for another singleton, the
// sidecar has no access to it and every Pod stands by.
type RoleLabel struct {
	// Client patches Pods and lists them, and reads Leases (the manager's
	// cache: Pods of singletons, Leases labelled ManagedByLabel).
	Client client.Client
	// Deployments reads Deployment metadata (the manager's cache).
	Deployments client.Reader
	// Policy is the cluster-wide policy (the default mode).
	Policy patches.Policy
	// Scope is where the controller acts; elsewhere it changes nothing.
	Scope Scope
	// Namespaces reads Namespace metadata for Scope (the manager's cache).
	Namespaces client.Reader
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Reconcile implements reconcile.Reconciler for one Deployment.
func (r *RoleLabel) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	if in, err := r.Scope.Contains(ctx, r.Namespaces, req.Namespace); err != nil || !in {
		return ctrl.Result{}, err
	}
	m := deploymentMeta()
	if err := r.Deployments.Get(ctx, req.NamespacedName, m); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !electionMode(m.Annotations, r.Policy) {
		return ctrl.Result{}, nil
	}
	lease := &coordinationv1.Lease{}
	err := r.Client.Get(ctx, client.ObjectKey{Namespace: m.Namespace, Name: LeaseName(m)}, lease)
	if err != nil && !apierrors.IsNotFound(err) {
		return ctrl.Result{}, fmt.Errorf("read lease: %w", err)
	}
	if err != nil || !ours(lease, m) {
		lease = &coordinationv1.Lease{} // no holder
	}
	now := time.Now()
	if r.Now != nil {
		now = r.Now()
	}
	holder, until := leaseHolder(lease, now)
	var pods corev1.PodList
	if err := r.Client.List(ctx, &pods, client.InNamespace(m.Namespace),
		client.MatchingLabels{patches.LabelDeployment: patches.DeploymentLabelValue(m.Name)}); err != nil {
		return ctrl.Result{}, fmt.Errorf("list pods: %w", err)
	}
	// Standbys first, then the leader.
	for _, leader := range []bool{false, true} {
		for i := range pods.Items {
			p := &pods.Items[i]
			if (p.Name == holder) != leader {
				continue
			}
			err := r.label(ctx, p, map[bool]string{true: sidecar.RoleLeader, false: sidecar.RoleStandby}[leader])
			if errors.Is(err, errStale) {
				// Stop the pass (no leader labelled while a standby's
				// patch failed): the Pod's change queues a fresh one.
				return ctrl.Result{}, nil
			}
			if err != nil {
				return ctrl.Result{}, err
			}
		}
	}
	if holder == "" {
		return ctrl.Result{}, nil
	}
	return ctrl.Result{RequeueAfter: until.Sub(now)}, nil
}

// errStale reports a Pod that changed since the pass read it.
var errStale = errors.New("pod changed since it was read")

// leaseHolder is the Lease's holder and when its lease ends, if it is valid
// at now; "" otherwise.
func leaseHolder(l *coordinationv1.Lease, now time.Time) (string, time.Time) {
	s := l.Spec
	if s.HolderIdentity == nil || *s.HolderIdentity == "" || s.RenewTime == nil || s.LeaseDurationSeconds == nil {
		return "", time.Time{}
	}
	until := s.RenewTime.Add(time.Duration(*s.LeaseDurationSeconds) * time.Second)
	if !now.Before(until) {
		return "", time.Time{}
	}
	return *s.HolderIdentity, until
}

// label sets the role label of p, if it differs, under an optimistic lock
// on the Pod as read: a merge patch of the label and p's resourceVersion,
// which the API server refuses with a conflict if p changed since.
func (r *RoleLabel) label(ctx context.Context, p *corev1.Pod, role string) error {
	if p.Labels[sidecar.RoleLabel] == role || p.DeletionTimestamp != nil {
		return nil
	}
	patched := p.DeepCopy()
	if patched.Labels == nil {
		patched.Labels = map[string]string{}
	}
	patched.Labels[sidecar.RoleLabel] = role
	err := r.Client.Patch(ctx, patched, client.MergeFromWithOptions(p, client.MergeFromWithOptimisticLock{}))
	if apierrors.IsNotFound(err) {
		return nil
	}
	if apierrors.IsConflict(err) {
		logf.FromContext(ctx).V(1).Info("role label not set: the Pod changed since it was read", "pod", p.Name, "role", role)
		return errStale
	}
	if err != nil {
		return fmt.Errorf("label pod %s %s=%s: %w", p.Name, sidecar.RoleLabel, role, err)
	}
	logf.FromContext(ctx).V(1).Info("role label set", "pod", p.Name, "role", role)
	return nil
}
