package app

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/utils/ptr"

	"github.com/singleton-webhook/singleton-webhook/patches"
)

// A unit test of release's decisions on a fake clientset; the cluster tier
// (test/cluster/lifecycle_test.go) runs it against real controllers.

// mutated is a Deployment as the webhook stored it, rolled out.
func mutated(t *testing.T, ns, name string, annotations map[string]string) *appsv1.Deployment {
	t.Helper()
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Generation: 1, Annotations: annotations},
		Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](3),
			Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "pause"}}}}}}
	if _, err := patches.Apply(d, patches.Policy{}); err != nil {
		t.Fatal(err)
	}
	d.Status = appsv1.DeploymentStatus{ObservedGeneration: 1, Replicas: 1, UpdatedReplicas: 1}
	return d
}

func gatedPod(ns, name, group string, created time.Time) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, CreationTimestamp: metav1.NewTime(created),
		Labels: map[string]string{patches.LabelDeployment: group}},
		Spec: corev1.PodSpec{SchedulingGates: []corev1.PodSchedulingGate{{Name: patches.GateOneAtATime}}}}
}

func runRelease(t *testing.T, cs *fake.Clientset, dryRun bool) (bool, string) {
	t.Helper()
	var out bytes.Buffer
	r := &releaser{client: cs, dryRun: dryRun, maxInFlight: 2, timeout: 200 * time.Millisecond, poll: 10 * time.Millisecond, out: &out}
	ok := r.run(context.Background())
	t.Logf("release output:\n%s", out.String())
	return ok, out.String()
}

func TestReleaseLetsGoOfReplicasModeOnly(t *testing.T) {
	now := time.Now()
	cs := fake.NewClientset(
		mutated(t, "a", "one", map[string]string{"singleton": "true"}),
		mutated(t, "b", "elected", map[string]string{"singleton": "true", patches.AnnotationMode: "election"}),
		&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "ordinary"}},
		gatedPod("c", "orphan-1", "gone", now.Add(-time.Minute)),
		gatedPod("c", "orphan-2", "gone", now),
	)
	ok, out := runRelease(t, cs, false)
	if ok {
		t.Error("release succeeded although a second gated Pod of one group must go on waiting")
	}
	d, err := cs.AppsV1().Deployments("a").Get(context.Background(), "one", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if patches.HasGate(d) || !patches.Released(d.Annotations) || *d.Spec.Replicas != 1 || d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
		t.Errorf("a/one after release: gate %t, released %t, replicas %d, strategy %s; want no gate, released, 1, Recreate",
			patches.HasGate(d), patches.Released(d.Annotations), *d.Spec.Replicas, d.Spec.Strategy.Type)
	}
	e, _ := cs.AppsV1().Deployments("b").Get(context.Background(), "elected", metav1.GetOptions{})
	if patches.Released(e.Annotations) {
		t.Error("the election-mode Deployment was marked released")
	}
	first, _ := cs.CoreV1().Pods("c").Get(context.Background(), "orphan-1", metav1.GetOptions{})
	second, _ := cs.CoreV1().Pods("c").Get(context.Background(), "orphan-2", metav1.GetOptions{})
	if gated(first) || !gated(second) {
		t.Errorf("gated after release: oldest %t, newer %t; want the oldest lifted, the newer waiting", gated(first), gated(second))
	}
	for _, line := range []string{
		"a/one: releasing: marked singleton.dev/released=true",
		"rolls once (Recreate: the Pod is replaced, never two at once); it keeps spec.replicas 1 and strategy Recreate (you asked for replicas 3, strategy RollingUpdate",
		"a/one: released: rolled out in",
		"b/elected: election mode, left as it is",
		"Pod c/orphan-1: lifted its scheduling gate",
		"Pod c/orphan-2: could not release: it waits for Pod orphan-1",
	} {
		if !strings.Contains(out, line) {
			t.Errorf("the output lacks %q", line)
		}
	}
	if strings.Contains(out, "a/ordinary") {
		t.Error("the output names an ordinary Deployment")
	}

	// Run again: nothing left to do but the Pod that must wait.
	_, again := runRelease(t, cs, false)
	if !strings.Contains(again, "a/one: released already") {
		t.Errorf("a second run does not say a/one is released already")
	}
}

func TestReleaseReportsWhatItCannotDoAndChangesNothingElse(t *testing.T) {
	cs := fake.NewClientset(
		mutated(t, "a", "refused", map[string]string{"singleton": "true"}),
		mutated(t, "a", "fine", map[string]string{"singleton": "true"}),
	)
	cs.PrependReactor("update", "deployments", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.(k8stesting.UpdateAction).GetObject().(*appsv1.Deployment).Name != "refused" {
			return false, nil, nil
		}
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Group: "apps", Resource: "deployments"}, "refused",
			errors.New(`User "someone" cannot update resource "deployments"`))
	})
	ok, out := runRelease(t, cs, false)
	if ok {
		t.Error("release succeeded although one Deployment could not be released")
	}
	if !strings.Contains(out, "a/refused: could not release: forbidden:") || !strings.Contains(out, "1 could not be released") {
		t.Errorf("the output does not say a/refused could not be released and why")
	}
	d, _ := cs.AppsV1().Deployments("a").Get(context.Background(), "refused", metav1.GetOptions{})
	if !patches.HasGate(d) || patches.Released(d.Annotations) {
		t.Error("the refused Deployment changed")
	}
	f, _ := cs.AppsV1().Deployments("a").Get(context.Background(), "fine", metav1.GetOptions{})
	if patches.HasGate(f) {
		t.Error("the other Deployment was not released")
	}
}

func TestReleaseDryRunChangesNothing(t *testing.T) {
	cs := fake.NewClientset(mutated(t, "a", "one", map[string]string{"singleton": "true"}))
	var dry []string
	cs.PrependReactor("update", "*", func(a k8stesting.Action) (bool, runtime.Object, error) {
		opts := a.(k8stesting.UpdateActionImpl).UpdateOptions
		dry = append(dry, strings.Join(opts.DryRun, ","))
		return true, a.(k8stesting.UpdateAction).GetObject(), nil // the server-side dry run: answered, not stored
	})
	ok, out := runRelease(t, cs, true)
	if !ok {
		t.Error("the dry run failed")
	}
	if len(dry) != 1 || dry[0] != metav1.DryRunAll {
		t.Fatalf("updates sent with dry run %q, want one with All", dry)
	}
	if !strings.Contains(out, "a/one: would release") {
		t.Errorf("the output does not say what would be released")
	}
	d, _ := cs.AppsV1().Deployments("a").Get(context.Background(), "one", metav1.GetOptions{})
	if !patches.HasGate(d) {
		t.Error("a dry run removed the gate")
	}
}

func TestReleaseFlagsRefused(t *testing.T) {
	tests := map[string]struct {
		args []string
		want string
	}{
		"no scope":          {nil, "say where: -n NAMESPACE, or -A"},
		"both scopes":       {[]string{"-n", "x", "-A"}, "-n x and -A exclude each other"},
		"no rollout at all": {[]string{"-A", "--max-in-flight=0"}, "--max-in-flight 0: want at least 1"},
		"a stray argument":  {[]string{"-A", "x"}, `unexpected argument "x"`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := parseRelease(tc.args, io.Discard)
			var ee *ExitError
			if !errors.As(err, &ee) || ee.Code != 2 || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want a usage error containing %q", err, tc.want)
			}
		})
	}
}

// A release interrupted halfway (Ctrl-C, or the hook Job's Pod killed)
// reports what it did not finish and exits non-zero; run again, it
// awaits the rollout the first run did not, releases the rest and leaves
// the one already released as it is: every Deployment is updated once over
// both runs, so it rolls once.
func TestReleaseInterruptedHalfwayCanRunAgain(t *testing.T) {
	cs := fake.NewClientset(
		mutated(t, "a", "one", map[string]string{"singleton": "true"}),
		mutated(t, "a", "two", map[string]string{"singleton": "true"}),
		mutated(t, "a", "three", map[string]string{"singleton": "true"}),
	)
	ctx, interrupt := context.WithCancel(context.Background())
	updates := map[string]int{}
	cs.PrependReactor("*", "*", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if ctx.Err() != nil {
			return true, nil, ctx.Err() // as client-go fails once its context is cancelled
		}
		if u, ok := a.(k8stesting.UpdateAction); ok && a.GetResource().Resource == "deployments" && a.GetSubresource() == "" {
			updates[u.GetObject().(*appsv1.Deployment).Name]++
			interrupt() // right after the first update is sent: before its rollout is awaited
		}
		return false, nil, nil
	})
	var out bytes.Buffer
	r := &releaser{client: cs, maxInFlight: 1, timeout: time.Minute, poll: 10 * time.Millisecond, out: &out}
	if r.run(ctx) {
		t.Errorf("an interrupted release reported success:\n%s", out.String())
	}
	t.Logf("interrupted:\n%s", out.String())
	for _, line := range []string{
		"a/one: could not release: released, but it was interrupted before its rollout finished",
		"a/three: could not release: interrupted before the API server answered",
		"a/two: could not release: interrupted before the API server answered",
	} {
		if !strings.Contains(out.String(), line) {
			t.Errorf("the interrupted run's output lacks %q", line)
		}
	}
	ctx = context.Background() // the interruption is over
	for _, name := range []string{"two", "three"} {
		d, _ := cs.AppsV1().Deployments("a").Get(context.Background(), name, metav1.GetOptions{})
		if !patches.HasGate(d) || patches.Released(d.Annotations) {
			t.Errorf("a/%s changed although the run was interrupted before it", name)
		}
	}

	// a/one's rollout is still going on when the second run starts.
	one, _ := cs.AppsV1().Deployments("a").Get(ctx, "one", metav1.GetOptions{})
	one.Generation, one.Status.ObservedGeneration = 2, 1
	if _, err := cs.AppsV1().Deployments("a").UpdateStatus(ctx, one, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(100 * time.Millisecond)
		one.Status.ObservedGeneration = 2
		_, _ = cs.AppsV1().Deployments("a").UpdateStatus(ctx, one, metav1.UpdateOptions{})
	}()
	ok, again := runRelease(t, cs, false)
	if !ok {
		t.Error("the second run failed")
	}
	for _, line := range []string{"a/one: released already: its rollout finished", "a/two: released: rolled out in", "a/three: released: rolled out in",
		"released 2 Deployment(s); 0 could not be released"} {
		if !strings.Contains(again, line) {
			t.Errorf("the second run's output lacks %q", line)
		}
	}
	for _, name := range []string{"one", "two", "three"} {
		d, _ := cs.AppsV1().Deployments("a").Get(context.Background(), name, metav1.GetOptions{})
		if patches.HasGate(d) || !patches.Released(d.Annotations) || updates[name] != 1 {
			t.Errorf("a/%s after both runs: gate %t, released %t, updated %d times; want no gate, released, updated once",
				name, patches.HasGate(d), patches.Released(d.Annotations), updates[name])
		}
	}
}
