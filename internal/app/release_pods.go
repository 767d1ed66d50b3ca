package app

import (
	"context"
	"slices"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/singleton-webhook/singleton-webhook/patches"
)

// podGroup is the Pods of one singleton: one namespace, one value of
// patches.LabelDeployment.
type podGroup struct{ namespace, value string }

// releasePods lifts the gate of the Pods still gated once their
// Deployment's rollout is over (or a Deployment could not roll): in each
// group the oldest gated Pod, once no other Pod of the group is alive, the
// rule the gate controller follows; a Pod that must go on waiting gets a
// line.
func (r *releaser) releasePods(ctx context.Context) {
	groups, err := r.gatedGroups(ctx)
	if err != nil {
		r.fail("gated Pods", "list them: %s", explain(err))
		return
	}
	for _, g := range groups {
		r.releaseGroup(ctx, g)
	}
}

// gatedGroups lists the groups holding a gated Pod.
func (r *releaser) gatedGroups(ctx context.Context) ([]podGroup, error) {
	pods, err := r.client.CoreV1().Pods(r.namespace).List(ctx, metav1.ListOptions{LabelSelector: patches.LabelDeployment})
	if err != nil {
		return nil, err
	}
	seen := map[podGroup]bool{}
	var groups []podGroup
	for i := range pods.Items {
		p := &pods.Items[i]
		g := podGroup{p.Namespace, p.Labels[patches.LabelDeployment]}
		if gated(p) && !seen[g] {
			seen[g] = true
			groups = append(groups, g)
		}
	}
	sort.Slice(groups, func(i, j int) bool {
		return groups[i].namespace+"/"+groups[i].value < groups[j].namespace+"/"+groups[j].value
	})
	return groups, nil
}

// releaseGroup waits, up to the timeout, until no Pod of the group other
// than the gated ones is alive, then lifts the gate of the oldest.
func (r *releaser) releaseGroup(ctx context.Context, g podGroup) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	where := "Pods " + g.namespace + "/" + patches.LabelDeployment + "=" + g.value
	for {
		pods, err := r.client.CoreV1().Pods(g.namespace).List(ctx, metav1.ListOptions{LabelSelector: patches.LabelDeployment + "=" + g.value})
		if err != nil {
			r.fail(where, "list them: %s", explain(err))
			return
		}
		var waiting []*corev1.Pod
		var blocker *corev1.Pod
		for i := range pods.Items {
			p := &pods.Items[i]
			switch {
			case gated(p):
				waiting = append(waiting, p)
			case alive(p):
				blocker = p
			}
		}
		if len(waiting) == 0 {
			return
		}
		if blocker == nil {
			sort.Slice(waiting, func(i, j int) bool { return waiting[i].CreationTimestamp.Before(&waiting[j].CreationTimestamp) })
			r.liftGate(ctx, waiting[0])
			for _, p := range waiting[1:] {
				r.fail("Pod "+p.Namespace+"/"+p.Name, "it waits for Pod %s of the same Deployment, which now runs: delete it if it is not needed, or remove its gate by hand once that Pod is gone (docs/install.md, \"Emergency recovery\")", waiting[0].Name)
			}
			return
		}
		select {
		case <-ctx.Done():
			for _, p := range waiting {
				r.fail("Pod "+p.Namespace+"/"+p.Name, "Pod %s of the same Deployment is still alive after %s: run release again once it is gone", blocker.Name, r.timeout)
			}
			return
		case <-time.After(r.poll):
		}
	}
}

// liftGate removes our gate from a Pod, conditioned on the version read.
func (r *releaser) liftGate(ctx context.Context, p *corev1.Pod) {
	name := "Pod " + p.Namespace + "/" + p.Name
	q := p.DeepCopy()
	q.Spec.SchedulingGates = slices.DeleteFunc(q.Spec.SchedulingGates, func(g corev1.PodSchedulingGate) bool { return g.Name == patches.GateOneAtATime })
	opts := metav1.UpdateOptions{FieldManager: releaseFieldManager}
	if r.dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	_, err := r.client.CoreV1().Pods(p.Namespace).Update(ctx, q, opts)
	switch {
	case apierrors.IsConflict(err) || apierrors.IsNotFound(err):
		r.fail(name, "it changed meanwhile (the gate controller may have released it): run release again to check")
	case err != nil:
		r.fail(name, "%s", explain(err))
	case r.dryRun:
		r.say("%s: would lift its scheduling gate (no other Pod of its Deployment is alive)", name)
	default:
		r.say("%s: lifted its scheduling gate (no other Pod of its Deployment is alive)", name)
	}
}

// gated reports whether a Pod still waits behind our gate.
func gated(p *corev1.Pod) bool {
	return slices.ContainsFunc(p.Spec.SchedulingGates, func(g corev1.PodSchedulingGate) bool { return g.Name == patches.GateOneAtATime })
}

// alive reports whether a Pod may still run containers: not terminal. A
// Terminating Pod is alive.
func alive(p *corev1.Pod) bool {
	return p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed
}
