//go:build integration

package integration

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	"github.com/singleton-webhook/singleton-webhook/internal/testenv"
)

// timeout bounds every API call of a test step.
const timeout = 30 * time.Second

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	return ctx
}

// newNamespace creates a namespace of its own for a test.
func newNamespace(t *testing.T, env *testenv.Env) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "it-"}}
	got, err := env.Clientset.CoreV1().Namespaces().Create(ctxFor(t), ns, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	return got.Name
}

// deployment is what a user writes: replicas and a rolling update with a
// surge, the settings a singleton must not keep.
func deployment(ns, name string, replicas int32, annotations map[string]string) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	surge, unavailable := intstr.FromInt32(1), intstr.FromInt32(0)
	return &appsv1.Deployment{
		TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: ns, Annotations: annotations,
		},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Strategy: appsv1.DeploymentStrategy{
				Type:          appsv1.RollingUpdateDeploymentStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDeployment{MaxSurge: &surge, MaxUnavailable: &unavailable},
			},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "app", Image: "registry.k8s.io/pause:3.10",
				}}},
			},
		},
	}
}

// singleton is a deployment carrying singleton: "true".
func singleton(ns, name string, replicas int32) *appsv1.Deployment {
	return deployment(ns, name, replicas, map[string]string{"singleton": "true"})
}

// manifest renders an object as the YAML a user would feed kubectl.
func manifest(t *testing.T, obj any) string {
	t.Helper()
	b, err := yaml.Marshal(obj)
	if err != nil {
		t.Fatalf("encode manifest: %v", err)
	}
	return string(b)
}

func getDeployment(t *testing.T, env *testenv.Env, ns, name string) *appsv1.Deployment {
	t.Helper()
	d, err := env.Clientset.AppsV1().Deployments(ns).Get(ctxFor(t), name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get deployment %s/%s: %v", ns, name, err)
	}
	return d
}

func replicasOf(d *appsv1.Deployment) string {
	if d.Spec.Replicas == nil {
		return "unset"
	}
	return fmt.Sprint(*d.Spec.Replicas)
}

// assertPinned fails unless d is stored as a replicas-mode singleton.
func assertPinned(t *testing.T, d *appsv1.Deployment) {
	t.Helper()
	if replicasOf(d) != "1" {
		t.Errorf("deployment %s: replicas %s, want 1", d.Name, replicasOf(d))
	}
	if d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType || d.Spec.Strategy.RollingUpdate != nil {
		t.Errorf("deployment %s: strategy %+v, want Recreate without rollingUpdate", d.Name, d.Spec.Strategy)
	}
}

// warnings collects the admission warnings client-go receives.
type warnings struct {
	mu   sync.Mutex
	list []string
}

// HandleWarningHeader implements rest.WarningHandler.
func (w *warnings) HandleWarningHeader(_ int, _ string, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.list = append(w.list, text)
}

func (w *warnings) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.Join(w.list, "\n")
}

// warningClient returns a clientset whose warnings land in the returned
// collector.
func warningClient(t *testing.T, env *testenv.Env) (kubernetes.Interface, *warnings) {
	t.Helper()
	w := &warnings{}
	cfg := rest.CopyConfig(env.Config)
	cfg.WarningHandler = w
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatalf("create clientset: %v", err)
	}
	return cs, w
}

// eventually polls cond every 100ms until it holds or within passes.
func eventually(t *testing.T, within time.Duration, what string, cond func() (bool, string)) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		ok, state := cond()
		if ok {
			return time.Since(start)
		}
		if time.Since(start) > within {
			t.Fatalf("%s: not within %s; last state: %s", what, within, state)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
