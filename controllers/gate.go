package controllers

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/recorder"

	"github.com/singleton-webhook/singleton-webhook/patches"
)

// Gate lifts the scheduling gate patches.GateOneAtATime from a Pod of a
// replicas-mode singleton once no other Pod of the same Deployment is alive:
// StatefulSet semantics for a Deployment of one.
//
// A Pod is alive unless it is terminal (Succeeded, Failed) or gone; a
// Terminating Pod is alive, since its containers may still run until its
// grace period ends. Pods are grouped by the patches.LabelDeployment label
// the webhook puts on the pod template; one reconcile handles one group.
//
// Decisions:
//   - The decision reads the group from the API server (Reader), never
//     from the cache: a stale cache must not make two Pods runnable.
//     Removing the gate is an update conditioned on the Pod's
//     resourceVersion, so it acts on exactly the state it read.
//   - Among several gated Pods the oldest goes first; the others wait for
//     it like for any other Pod.
//   - A Pod left Terminating (its node unreachable) blocks forever, as it
//     does for a StatefulSet: running two instances is never the safe
//     default. The wait shows as an Event on the waiting Pod naming the Pod
//     it waits for (again when that Pod overstays its grace period), in the
//     singleton_gate_waiting_pods metric and in the log. An administrator
//     ends it by force-deleting the old Pod or by tainting its node
//     node.kubernetes.io/out-of-service, after which the pod garbage
//     collector removes it.
//   - The controller runs in the webhook's Deployment, with leader
//     election: while no replica leads, new Pods of singletons wait, Pending
//     with reason SchedulingGated. Running Pods are not affected.
type Gate struct {
	// Client removes gates.
	Client client.Client
	// Reader lists a group's Pods: the API server itself.
	Reader client.Reader
	// Recorder records the Events on waiting and released Pods.
	Recorder recorder.EventRecorder
	// Metrics observes the waits; nil records none.
	Metrics *GateMetrics

	mu sync.Mutex
	// told remembers, per group and waiting Pod, the blocker and state last
	// reported, so that each wait is told once, not on every reconcile.
	told map[types.NamespacedName]map[types.UID]string
}

// gateRecheck is how often a waiting group is looked at again without an
// event, to report a blocker that overstayed its grace period.
const gateRecheck = 15 * time.Second

// PodCacheOptions restricts the manager's Pod informer to the Pods of
// singletons (those labelled patches.LabelDeployment), so the webhook never
// caches other Pods of the cluster.
func PodCacheOptions() cache.ByObject {
	sel, err := labels.Parse(patches.LabelDeployment)
	if err != nil {
		panic(fmt.Sprintf("selector %q: %v", patches.LabelDeployment, err))
	}
	return cache.ByObject{Label: sel}
}

// SetupGate registers the gate controller with the manager, whose cache
// should restrict Pods with PodCacheOptions, and its metrics with
// controller-runtime's registry. The policy is not needed: the pod template
// carries the gate only in replicas mode.
func SetupGate(mgr ctrl.Manager, _ patches.Policy) error {
	m, err := NewGateMetrics(crmetrics.Registry)
	if err != nil {
		return err
	}
	r := &Gate{Client: mgr.GetClient(), Reader: mgr.GetAPIReader(), Recorder: mgr.GetEventRecorder("singleton-gate"), Metrics: m}
	err = ctrl.NewControllerManagedBy(mgr).
		Named("singleton-gate").
		Watches(&corev1.Pod{}, handler.EnqueueRequestsFromMapFunc(podGroup)).
		Complete(r)
	if err != nil {
		return fmt.Errorf("set up gate controller: %w", err)
	}
	return nil
}

// podGroup maps a Pod to its group: namespace and LabelDeployment value.
func podGroup(_ context.Context, o client.Object) []reconcile.Request {
	v, ok := o.GetLabels()[patches.LabelDeployment]
	if !ok {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: o.GetNamespace(), Name: v}}}
}

// Reconcile implements reconcile.Reconciler for one group of Pods.
func (g *Gate) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	var pods corev1.PodList
	if err := g.Reader.List(ctx, &pods, client.InNamespace(req.Namespace), client.MatchingLabels{patches.LabelDeployment: req.Name}); err != nil {
		return reconcile.Result{}, fmt.Errorf("list pods of %s: %w", req, err)
	}
	gated, alive := sortGroup(pods.Items)
	waiting := len(gated)
	if len(alive) == 0 && waiting > 0 {
		waiting-- // the oldest is released below
	}
	g.Metrics.setWaiting(req.NamespacedName, waiting)
	if len(gated) == 0 {
		return reconcile.Result{}, nil
	}
	told := g.swapTold(req.NamespacedName, nil)
	if len(alive) > 0 {
		now := map[types.UID]string{}
		for _, p := range gated {
			now[p.UID] = g.tellWaiting(ctx, p, alive[0], told[p.UID])
		}
		g.swapTold(req.NamespacedName, now)
		return reconcile.Result{RequeueAfter: gateRecheck}, nil
	}
	return reconcile.Result{}, g.release(ctx, gated[0])
}

// swapTold replaces what was told of a group's waits, returning the old.
func (g *Gate) swapTold(group types.NamespacedName, now map[types.UID]string) map[types.UID]string {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.told == nil {
		g.told = map[types.NamespacedName]map[types.UID]string{}
	}
	old := g.told[group]
	if now == nil {
		delete(g.told, group)
	} else {
		g.told[group] = now
	}
	return old
}

// sortGroup splits a group into its gated Pods, oldest first, and its alive
// ungated ones. A gated Pod that is being deleted never ran: it is neither.
func sortGroup(items []corev1.Pod) (gated, alive []*corev1.Pod) {
	for i := range items {
		p := &items[i]
		switch {
		case hasGate(p) && p.DeletionTimestamp == nil:
			gated = append(gated, p)
		case hasGate(p):
		case p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed:
			alive = append(alive, p)
		}
	}
	older := func(s []*corev1.Pod) func(i, j int) bool {
		return func(i, j int) bool {
			a, b := s[i], s[j]
			if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
				return a.CreationTimestamp.Before(&b.CreationTimestamp)
			}
			return a.Name < b.Name
		}
	}
	sort.Slice(gated, older(gated))
	sort.Slice(alive, older(alive))
	return gated, alive
}

func hasGate(p *corev1.Pod) bool {
	return slices.ContainsFunc(p.Spec.SchedulingGates, func(s corev1.PodSchedulingGate) bool {
		return s.Name == patches.GateOneAtATime
	})
}

// release removes the gate from p, conditioned on the resourceVersion read.
func (g *Gate) release(ctx context.Context, p *corev1.Pod) error {
	orig := p.DeepCopy()
	p.Spec.SchedulingGates = slices.DeleteFunc(p.Spec.SchedulingGates, func(s corev1.PodSchedulingGate) bool {
		return s.Name == patches.GateOneAtATime
	})
	err := g.Client.Patch(ctx, p, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{}))
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		// Gone, or changed since it was read: the next event decides again.
		return nil
	}
	if err != nil {
		return fmt.Errorf("lift gate of pod %s/%s: %w", p.Namespace, p.Name, err)
	}
	waited := time.Since(p.CreationTimestamp.Time)
	g.Metrics.observeWait(waited)
	logf.FromContext(ctx).Info("pod released: no other pod of the singleton is alive", "pod", p.Name, "waited", waited.Round(time.Millisecond).String())
	g.Recorder.Eventf(p, nil, corev1.EventTypeNormal, "SingletonReleased", "Schedule",
		"No other Pod of this singleton is alive; scheduling gate %s removed after %s", patches.GateOneAtATime, waited.Round(time.Millisecond))
	return nil
}

// tellWaiting reports that p waits for blocker, unless told already says
// so; it returns what it told.
func (g *Gate) tellWaiting(ctx context.Context, p, blocker *corev1.Pod, told string) string {
	state, note := blockerState(blocker)
	key := blocker.Name + "/" + state
	if key == told {
		return key
	}
	eventType := corev1.EventTypeNormal
	if state == "overdue" {
		eventType = corev1.EventTypeWarning
	}
	logf.FromContext(ctx).Info("pod waits for another pod of the singleton", "pod", p.Name, "blocker", blocker.Name, "state", state)
	g.Recorder.Eventf(p, blocker, eventType, "SingletonWaiting", "Wait",
		"Waiting for Pod %s of the same singleton to be gone: %s", blocker.Name, note)
	return key
}

// blockerState describes why a blocker is still alive.
func blockerState(b *corev1.Pod) (state, note string) {
	if b.DeletionTimestamp == nil {
		return "running", fmt.Sprintf("it is %s on node %q and not being deleted", phaseOf(b), b.Spec.NodeName)
	}
	end := b.DeletionTimestamp.Time
	if time.Now().After(end.Add(2 * time.Second)) {
		return "overdue", fmt.Sprintf("it is still Terminating %s after its grace period ended, on node %q, which may be unreachable; "+
			"it blocks until the node removes it, or until an administrator force-deletes it "+
			"(kubectl delete pod %s --grace-period=0 --force) or taints the node node.kubernetes.io/out-of-service",
			time.Since(end).Round(time.Second), b.Spec.NodeName, b.Name)
	}
	return "terminating", fmt.Sprintf("it is Terminating on node %q, its grace period ends at %s", b.Spec.NodeName, end.UTC().Format(time.RFC3339))
}

func phaseOf(p *corev1.Pod) string {
	if p.Status.Phase == "" {
		return string(corev1.PodPending)
	}
	return string(p.Status.Phase)
}
