//go:build integration

package cluster

import (
	"bytes"
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

// grace is the terminationGracePeriodSeconds of the workloads under test.
const grace = 10

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// newNamespace creates a namespace for a test and deletes it afterwards.
func newNamespace(t *testing.T) string {
	t.Helper()
	ns, err := cl.Clientset.CoreV1().Namespaces().Create(ctxFor(t, 30*time.Second),
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "ct-"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	t.Cleanup(func() {
		_ = cl.Clientset.CoreV1().Namespaces().Delete(context.Background(), ns.Name, metav1.DeleteOptions{})
	})
	return ns.Name
}

// run runs kubectl against the cluster and fails the test on a non-zero
// exit; it returns stdout and stderr.
func run(t *testing.T, args ...string) (string, string) {
	t.Helper()
	out, errOut, err := tryRun(t, args...)
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, errOut)
	}
	return out, errOut
}

func tryRun(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := exec.CommandContext(ctx, kubectl, append([]string{"--kubeconfig", cl.Kubeconfig}, args...)...)
	var out, errOut bytes.Buffer
	c.Stdout, c.Stderr = &out, &errOut
	err := c.Run()
	t.Logf("kubectl %s: %v\n%s%s", strings.Join(args, " "), err, out.String(), errOut.String())
	return out.String(), errOut.String(), err
}

// podTemplate is a Pod of the workloads under test, with the grace period
// and, for node loss, the short tolerations the suite's API server gives.
func podTemplate(app string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": app}},
		Spec: corev1.PodSpec{
			TerminationGracePeriodSeconds: ptr.To[int64](grace),
			Containers: []corev1.Container{{
				Name: "app", Image: "registry.k8s.io/pause:3.10",
				Ports: []corev1.ContainerPort{{ContainerPort: 8080}},
			}},
		},
	}
}

// deployment is what a user writes: replicas and a rolling update.
func deployment(ns, name string, replicas int32, annotations map[string]string) *appsv1.Deployment {
	surge := intstr.FromInt32(1)
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Annotations: annotations},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Strategy: appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDeployment{MaxSurge: &surge}},
			Template: podTemplate(name),
		},
	}
}

// singleton is a replicas-mode singleton as a user writes it: 3 replicas
// and a rolling update, which the webhook rewrites.
func singleton(ns, name string) *appsv1.Deployment {
	return deployment(ns, name, 3, map[string]string{"singleton": "true"})
}

// recreateOfOne is what replicas mode was before the gate: one replica and
// Recreate, no singleton annotation.
func recreateOfOne(ns, name string) *appsv1.Deployment {
	d := deployment(ns, name, 1, nil)
	d.Spec.Strategy = appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}
	return d
}

// statefulSetOfOne is the Kubernetes answer to "at most one": a StatefulSet
// of one replica.
func statefulSetOfOne(ns, name string) *appsv1.StatefulSet {
	return &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: appsv1.StatefulSetSpec{
			Replicas:    ptr.To[int32](1),
			ServiceName: name,
			Selector:    &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template:    podTemplate(name),
		},
	}
}

// onlyPod waits until exactly one Pod of the tracker serves and returns it.
func onlyPod(t *testing.T, tr *tracker) *corev1.Pod {
	t.Helper()
	tr.waitFor(time.Minute, "one Pod serving", func(ps []*corev1.Pod) bool {
		n := 0
		for _, p := range ps {
			if p.DeletionTimestamp == nil && ready(p) {
				n++
			}
		}
		return n == 1
	})
	for _, p := range tr.snapshot() {
		if p.DeletionTimestamp == nil && ready(p) {
			return p
		}
	}
	t.Fatal("unreachable")
	return nil
}
