package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/singleton-webhook/singleton-webhook/patches"
)

// releaseFieldManager names release's writes in managedFields.
const releaseFieldManager = "singleton-webhook-release"

// releaser runs one release: the Deployments first, a bounded number at a
// time, then the Pods still gated.
type releaser struct {
	client      kubernetes.Interface
	namespace   string // empty: every namespace
	dryRun      bool
	maxInFlight int
	timeout     time.Duration // per rollout, and per gated group
	poll        time.Duration
	out         io.Writer

	mu       sync.Mutex
	failures int
	released int
}

// say writes one line of the report.
func (r *releaser) say(format string, a ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	fmt.Fprintf(r.out, format+"\n", a...)
}

// fail writes one line saying what could not be released and why.
func (r *releaser) fail(ref, format string, a ...any) {
	r.mu.Lock()
	r.failures++
	r.mu.Unlock()
	r.say("%s: could not release: %s", ref, fmt.Sprintf(format, a...))
}

// run releases everything in scope and reports whether all of it was.
func (r *releaser) run(ctx context.Context) bool {
	where := "in every namespace"
	if r.namespace != "" {
		where = "in namespace " + r.namespace
	}
	list, err := r.client.AppsV1().Deployments(r.namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		r.fail("Deployments "+where, "list them: %s", explain(err))
		return false
	}
	items := list.Items
	sort.Slice(items, func(i, j int) bool { return ref(&items[i]) < ref(&items[j]) })
	work := make(chan *appsv1.Deployment)
	var wg sync.WaitGroup
	for range r.maxInFlight {
		wg.Go(func() {
			for d := range work {
				r.releaseDeployment(ctx, d)
			}
		})
	}
	for i := range items {
		d := &items[i]
		on, _ := patches.Enabled(d.Annotations)
		_, injected := patches.InjectedVersion(&d.Spec.Template)
		switch {
		case d.DeletionTimestamp != nil:
			r.say("%s: being deleted, nothing to release", ref(d))
		case patches.HasGate(d):
			work <- d
		case on && injected:
			r.say("%s: election mode, left as it is: its sidecar elects on its own (Lease, Role and RoleBinding stay); once the webhook is gone its Pods' role labels and leader Service are no longer updated", ref(d))
		case on && patches.Released(d.Annotations) && !rolledOut(d, d.Generation):
			work <- d // a run interrupted before its rollout finished: await it now
		case on && patches.Released(d.Annotations):
			r.say("%s: released already", ref(d))
		case on:
			r.say("%s: nothing to release: its pod template has no scheduling gate", ref(d))
		}
	}
	close(work)
	wg.Wait()
	r.releasePods(ctx)
	verb := "released"
	if r.dryRun {
		verb = "would release"
	}
	r.say("release %s: %s %d Deployment(s); %d could not be released", where, verb, r.released, r.failures)
	return r.failures == 0
}

// releaseDeployment releases one gated Deployment and waits for its
// rollout.
func (r *releaser) releaseDeployment(ctx context.Context, d *appsv1.Deployment) {
	if d.Spec.Paused {
		r.fail(ref(d), "it is paused (spec.paused), so its pod template would not roll and its ReplicaSet would go on creating gated Pods: "+
			"kubectl -n %s rollout resume deployment/%s, then run release again", d.Namespace, d.Name)
		return
	}
	var changes []string
	var updated *appsv1.Deployment
	var err error
	for range 5 {
		want := d.DeepCopy()
		if changes = patches.Release(want); len(changes) == 0 {
			r.awaitReleased(ctx, d)
			return
		}
		opts := metav1.UpdateOptions{FieldManager: releaseFieldManager}
		if r.dryRun {
			opts.DryRun = []string{metav1.DryRunAll}
		}
		updated, err = r.client.AppsV1().Deployments(d.Namespace).Update(ctx, want, opts)
		if !apierrors.IsConflict(err) {
			break
		}
		if d, err = r.client.AppsV1().Deployments(d.Namespace).Get(ctx, d.Name, metav1.GetOptions{}); err != nil {
			break
		}
	}
	if err != nil {
		r.fail(ref(d), "%s", explain(err))
		return
	}
	if patches.HasGate(updated) {
		r.fail(ref(d), "the API server kept the scheduling gate: an admission webhook put it back, so the installed singleton-webhook does not honour %s (an older version): "+
			"delete its MutatingWebhookConfiguration first (docs/install.md, \"Emergency recovery\"), then run release again", patches.AnnotationReleased)
		return
	}
	if r.dryRun {
		r.count()
		r.say("%s: would release: %s; the pod template changes, so it would roll once (%s); it would keep %s", ref(d), strings.Join(changes, ", "), rollKind(d), keeps(d))
		return
	}
	r.say("%s: releasing: %s; the pod template changed, so it rolls once (%s); it keeps %s", ref(d), strings.Join(changes, ", "), rollKind(d), keeps(d))
	start := time.Now()
	if err := r.waitRollout(ctx, updated); err != nil {
		r.fail(ref(d), "released, but %v; run release again to confirm", err)
		return
	}
	r.count()
	r.say("%s: released: rolled out in %s", ref(d), time.Since(start).Round(100*time.Millisecond))
}

// awaitReleased reports a Deployment released by an earlier run and, if
// its rollout has not finished (that run was interrupted), waits for it.
func (r *releaser) awaitReleased(ctx context.Context, d *appsv1.Deployment) {
	if r.dryRun || rolledOut(d, d.Generation) {
		r.say("%s: released already", ref(d))
		return
	}
	start := time.Now()
	if err := r.waitRollout(ctx, d); err != nil {
		r.fail(ref(d), "released already, but %v; run release again to confirm", err)
		return
	}
	r.say("%s: released already: its rollout finished %s later", ref(d), time.Since(start).Round(100*time.Millisecond))
}

// count counts one Deployment released (or, in a dry run, releasable).
func (r *releaser) count() {
	r.mu.Lock()
	r.released++
	r.mu.Unlock()
}

// waitRollout waits until the Deployment controller has rolled d out: its
// generation observed, and every Pod of the new template created, none of
// the old one left.
func (r *releaser) waitRollout(ctx context.Context, d *appsv1.Deployment) error {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	for {
		cur, err := r.client.AppsV1().Deployments(d.Namespace).Get(ctx, d.Name, metav1.GetOptions{})
		if err == nil && rolledOut(cur, d.Generation) {
			return nil
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.Canceled) {
				return fmt.Errorf("it was interrupted before its rollout finished (kubectl -n %s rollout status deployment/%s)", d.Namespace, d.Name)
			}
			return fmt.Errorf("its rollout did not finish within %s (kubectl -n %s rollout status deployment/%s)", r.timeout, d.Namespace, d.Name)
		case <-time.After(r.poll):
		}
	}
}

// rolledOut reports whether the Deployment controller has rolled d out as
// of generation: observed it, and every Pod of the current template
// created, none of an older one left.
func rolledOut(d *appsv1.Deployment, generation int64) bool {
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	st := d.Status
	return st.ObservedGeneration >= generation && st.UpdatedReplicas == want && st.Replicas == want
}

// rollKind says what one rollout of d costs.
func rollKind(d *appsv1.Deployment) string {
	if d.Spec.Strategy.Type == appsv1.RecreateDeploymentStrategyType {
		return "Recreate: the Pod is replaced, never two at once"
	}
	return "strategy " + string(d.Spec.Strategy.Type)
}

// keeps says what a released Deployment keeps of what the webhook set.
func keeps(d *appsv1.Deployment) string {
	r := "1"
	if d.Spec.Replicas != nil {
		r = fmt.Sprint(*d.Spec.Replicas)
	}
	s := fmt.Sprintf("spec.replicas %s and strategy %s", r, d.Spec.Strategy.Type)
	if o, ok := d.Annotations[patches.AnnotationOriginalReplicas]; ok {
		s += fmt.Sprintf(" (you asked for replicas %s, strategy %s: restore them yourself if you want them)", o, d.Annotations[patches.AnnotationOriginalStrategy])
	}
	return s
}

// explain says why a request failed and what to do about it.
func explain(err error) string {
	msg := err.Error()
	switch {
	case errors.Is(err, context.Canceled):
		return "interrupted before the API server answered (" + msg + "): run release again"
	case apierrors.IsForbidden(err) && strings.Contains(msg, "admission webhook"):
		return "refused by admission: " + msg
	case apierrors.IsForbidden(err):
		return "forbidden: " + msg + " (release needs list, get and update on deployments, list and update on pods: see the chart's release hook RBAC)"
	case strings.Contains(msg, "failed calling webhook"):
		return "a webhook is registered but does not answer (half uninstalled?): " + msg +
			"; delete its MutatingWebhookConfiguration (docs/install.md, \"Emergency recovery\"), then run release again"
	}
	return msg
}

func ref(d *appsv1.Deployment) string { return d.Namespace + "/" + d.Name }
