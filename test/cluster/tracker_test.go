//go:build integration

package cluster

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
)

// tracker watches the Pods of one workload and integrates, over time, what
// an application would see: how long two of its Pods coexisted and how long
// none served.
//
//   - A Pod coexists from the moment it is bound to a node (its containers
//     may start) until it is terminal or gone from the API: a Terminating
//     Pod still runs. A gated or unscheduled Pod runs nothing.
//   - A Pod serves while it is Ready and not Terminating.
type tracker struct {
	t    *testing.T
	stop context.CancelFunc
	done chan struct{}

	mu       sync.Mutex
	pods     map[types.UID]*corev1.Pod
	serving  map[types.UID]time.Time // when each Pod was first seen serving
	last     time.Time
	overlap  time.Duration
	down     time.Duration
	maxAlive int
	changed  chan struct{}
}

// track starts watching the Pods of ns matching selector.
func track(t *testing.T, cs kubernetes.Interface, ns, selector string) *tracker {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	tr := &tracker{t: t, stop: cancel, done: make(chan struct{}), pods: map[types.UID]*corev1.Pod{}, serving: map[types.UID]time.Time{}, last: time.Now(), changed: make(chan struct{}, 1)}
	list, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		t.Fatalf("list pods: %v", err)
	}
	for i := range list.Items {
		tr.apply(watch.Added, &list.Items[i])
	}
	w, err := cs.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{LabelSelector: selector, ResourceVersion: list.ResourceVersion})
	if err != nil {
		t.Fatalf("watch pods: %v", err)
	}
	go func() {
		defer close(tr.done)
		for ev := range w.ResultChan() {
			if p, ok := ev.Object.(*corev1.Pod); ok {
				tr.apply(ev.Type, p)
			}
		}
	}()
	t.Cleanup(tr.close)
	return tr
}

func (tr *tracker) close() {
	tr.stop()
	<-tr.done
}

// apply integrates the time since the last event, then records the event.
func (tr *tracker) apply(typ watch.EventType, p *corev1.Pod) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.integrateLocked()
	if typ == watch.Deleted {
		delete(tr.pods, p.UID)
	} else {
		tr.pods[p.UID] = p
		if _, seen := tr.serving[p.UID]; !seen && p.DeletionTimestamp == nil && ready(p) {
			tr.serving[p.UID] = tr.last
		}
	}
	alive, _ := tr.countLocked()
	tr.maxAlive = max(tr.maxAlive, alive)
	select {
	case tr.changed <- struct{}{}:
	default:
	}
}

// integrateLocked adds the time since the last event to the overlap and
// downtime the state since then stood for.
func (tr *tracker) integrateLocked() {
	now := time.Now()
	alive, serving := tr.countLocked()
	if alive >= 2 {
		tr.overlap += now.Sub(tr.last)
	}
	if serving == 0 {
		tr.down += now.Sub(tr.last)
	}
	tr.last = now
}

func (tr *tracker) countLocked() (alive, serving int) {
	for _, p := range tr.pods {
		if runs(p) {
			alive++
		}
		if p.DeletionTimestamp == nil && ready(p) {
			serving++
		}
	}
	return alive, serving
}

// runs reports whether p's containers may run: bound and not terminal.
func runs(p *corev1.Pod) bool {
	return p.Spec.NodeName != "" && p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed
}

func ready(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// window is what a tracker saw between reset and the call.
type window struct {
	Overlap  time.Duration // two Pods running at once
	Down     time.Duration // no Pod serving
	MaxAlive int
}

func (w window) String() string {
	return fmt.Sprintf("overlap %.1fs, unavailable %.1fs, at most %d running", w.Overlap.Seconds(), w.Down.Seconds(), w.MaxAlive)
}

// reset starts a new window.
func (tr *tracker) reset() {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.last = time.Now()
	tr.overlap, tr.down = 0, 0
	tr.maxAlive, _ = tr.countLocked()
}

// read integrates up to now and returns the window.
func (tr *tracker) read() window {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.integrateLocked()
	return window{Overlap: tr.overlap, Down: tr.down, MaxAlive: tr.maxAlive}
}

// servingAfter returns how long after from a Pod other than old was first
// seen serving; false if none has been.
func (tr *tracker) servingAfter(old types.UID, from time.Time) (time.Duration, bool) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	for uid, at := range tr.serving {
		if uid != old && tr.pods[uid] != nil && tr.pods[uid].DeletionTimestamp == nil {
			return max(at.Sub(from), 0), true
		}
	}
	return 0, false
}

// snapshot returns copies of the Pods currently known.
func (tr *tracker) snapshot() []*corev1.Pod {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	var out []*corev1.Pod
	for _, p := range tr.pods {
		out = append(out, p.DeepCopy())
	}
	return out
}

// waitFor waits until cond holds on the Pods, failing the test after d.
func (tr *tracker) waitFor(d time.Duration, what string, cond func([]*corev1.Pod) bool) {
	tr.t.Helper()
	deadline := time.After(d)
	for {
		if cond(tr.snapshot()) {
			return
		}
		select {
		case <-tr.changed:
		case <-time.After(200 * time.Millisecond):
		case <-deadline:
			tr.t.Fatalf("after %s: %s did not happen; pods: %s", d, what, describe(tr.snapshot()))
		}
	}
}

// servingOtherThan is a condition: a Pod other than old serves.
func servingOtherThan(old types.UID) func([]*corev1.Pod) bool {
	return func(ps []*corev1.Pod) bool {
		for _, p := range ps {
			if p.UID != old && p.DeletionTimestamp == nil && ready(p) {
				return true
			}
		}
		return false
	}
}

// gone is a condition: the Pod uid no longer runs.
func gone(uid types.UID) func([]*corev1.Pod) bool {
	return func(ps []*corev1.Pod) bool {
		for _, p := range ps {
			if p.UID == uid {
				return !runs(p)
			}
		}
		return true
	}
}

func describe(ps []*corev1.Pod) string {
	s := ""
	for _, p := range ps {
		state := string(p.Status.Phase)
		if p.DeletionTimestamp != nil {
			state += ",Terminating"
		}
		if len(p.Spec.SchedulingGates) > 0 {
			state += ",Gated"
		}
		if ready(p) {
			state += ",Ready"
		}
		s += fmt.Sprintf(" %s[%s on %q]", p.Name, state, p.Spec.NodeName)
	}
	return s
}
