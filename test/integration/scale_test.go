//go:build integration

package integration

import (
	"strings"
	"testing"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/singleton-webhook/singleton-webhook/internal/testenv"
)

// Cases of TestAdmission: the scale subresource, and applying twice.

func kubectlScaleSingleton(t *testing.T, env *testenv.Env) {
	ns := newNamespace(t, env)
	createDeployment(t, env, singleton(ns, "worker", 1))
	_, stderr, err := env.Kubectl(t, "", "scale", "-n", ns, "deploy/worker", "--replicas=3")
	if err != nil {
		t.Fatalf("kubectl scale: %v\n%s", err, stderr)
	}
	if !strings.Contains(stderr, "Warning: singleton: spec.replicas forced from 3 to 1 (Deployment worker is a singleton)") {
		t.Errorf("kubectl stderr %q lacks the scale warning", stderr)
	}
	assertPinned(t, getDeployment(t, env, ns, "worker"))
}

func kubectlScaleOrdinary(t *testing.T, env *testenv.Env) {
	ns := newNamespace(t, env)
	createDeployment(t, env, deployment(ns, "web", 1, nil))
	_, stderr, err := env.Kubectl(t, "", "scale", "-n", ns, "deploy/web", "--replicas=3")
	if err != nil {
		t.Fatalf("kubectl scale: %v\n%s", err, stderr)
	}
	if strings.Contains(stderr, "Warning") {
		t.Errorf("kubectl printed warnings: %q", stderr)
	}
	if got := getDeployment(t, env, ns, "web"); replicasOf(got) != "3" {
		t.Errorf("replicas %s, want 3", replicasOf(got))
	}
}

func updateScaleSingleton(t *testing.T, env *testenv.Env) {
	ns := newNamespace(t, env)
	createDeployment(t, env, singleton(ns, "worker", 1))
	cs, warned := warningClient(t, env)
	api := cs.AppsV1().Deployments(ns)
	scale, err := api.GetScale(ctxFor(t), "worker", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get scale: %v", err)
	}
	scale.Spec.Replicas = 5
	got, err := api.UpdateScale(ctxFor(t), "worker", scale, metav1.UpdateOptions{})
	if err != nil {
		t.Fatalf("update scale: %v", err)
	}
	if got.Spec.Replicas != 1 {
		t.Errorf("scale answered %d replicas, want 1", got.Spec.Replicas)
	}
	if !strings.Contains(warned.String(), "spec.replicas forced from 5 to 1") {
		t.Errorf("warnings %q lack the scale warning", warned)
	}
	assertPinned(t, getDeployment(t, env, ns, "worker"))
}

func updateScaleOrdinary(t *testing.T, env *testenv.Env) {
	ns := newNamespace(t, env)
	createDeployment(t, env, deployment(ns, "web", 1, nil))
	api := env.Clientset.AppsV1().Deployments(ns)
	scale := &autoscalingv1.Scale{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
		Spec:       autoscalingv1.ScaleSpec{Replicas: 5},
	}
	if _, err := api.UpdateScale(ctxFor(t), "web", scale, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("update scale: %v", err)
	}
	if got := getDeployment(t, env, ns, "web"); replicasOf(got) != "5" {
		t.Errorf("replicas %s, want 5", replicasOf(got))
	}
}

func applyTwiceUnchanged(t *testing.T, env *testenv.Env) {
	for name, args := range map[string][]string{
		"client-side apply": {"apply", "-f", "-"},
		"server-side apply": {"apply", "--server-side", "-f", "-"},
	} {
		t.Run(name, func(t *testing.T) {
			ns := newNamespace(t, env)
			m := manifest(t, singleton(ns, "worker", 3))
			if _, stderr, err := env.Kubectl(t, m, args...); err != nil {
				t.Fatalf("first kubectl apply: %v\n%s", err, stderr)
			}
			first := getDeployment(t, env, ns, "worker")
			if _, stderr, err := env.Kubectl(t, m, args...); err != nil {
				t.Fatalf("second kubectl apply: %v\n%s", err, stderr)
			}
			second := getDeployment(t, env, ns, "worker")
			if first.ResourceVersion != second.ResourceVersion || first.Generation != second.Generation {
				t.Errorf("second apply wrote the object: resourceVersion %s -> %s, generation %d -> %d",
					first.ResourceVersion, second.ResourceVersion, first.Generation, second.Generation)
			}
			if !apiequality.Semantic.DeepEqual(first.Spec, second.Spec) ||
				!apiequality.Semantic.DeepEqual(first.Annotations, second.Annotations) {
				t.Errorf("second apply changed the object:\nspec %+v\n  -> %+v\nannotations %v\n  -> %v",
					first.Spec, second.Spec, first.Annotations, second.Annotations)
			}
			assertPinned(t, second)
		})
	}
}
