//go:build integration

package integration

import (
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/singleton-webhook/singleton-webhook/internal/testenv"
	"github.com/singleton-webhook/singleton-webhook/patches"
)

// driftSettle is how long a test waits for the drift controller to act on
// an object it must leave alone. It re-pins within a fraction of a second.
const driftSettle = 2 * time.Second

// expectedWarnings are the warnings the webhook gives for d: those of the
// pure mutation it runs.
func expectedWarnings(t *testing.T, d *appsv1.Deployment) []string {
	t.Helper()
	res, err := patches.Apply(d.DeepCopy(), patches.Policy{})
	if err != nil || len(res.Warnings) == 0 {
		t.Fatalf("patches.Apply on the test's input: warnings %v, error %v; want warnings", res.Warnings, err)
	}
	return res.Warnings
}

// TestAdmission drives the webhook through a real API server with client-go
// and kubectl, the webhook up for the whole test.
func TestAdmission(t *testing.T) {
	t.Parallel() // each test runs a control plane of its own
	env := testenv.Start(t, testenv.Options{})
	env.StartWebhook(t, testenv.WebhookOptions{})

	t.Run("a singleton created with 3 replicas and a rolling update is stored with 1 and Recreate", func(t *testing.T) {
		ns := newNamespace(t, env)
		cs, warned := warningClient(t, env)
		sent := singleton(ns, "worker", 3)
		got, err := cs.AppsV1().Deployments(ns).Create(ctxFor(t), sent.DeepCopy(), metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("create: %v", err)
		}
		assertPinned(t, got)
		assertPinned(t, getDeployment(t, env, ns, "worker"))
		if got.Annotations[patches.AnnotationOriginalReplicas] != "3" {
			t.Errorf("annotation %s: got %q, want the requested 3", patches.AnnotationOriginalReplicas,
				got.Annotations[patches.AnnotationOriginalReplicas])
		}
		for _, w := range expectedWarnings(t, sent) {
			if !strings.Contains(warned.String(), w) {
				t.Errorf("client-go received warnings %q, want %q among them", warned, w)
			}
		}
	})

	t.Run("kubectl apply prints the webhook's warnings", func(t *testing.T) {
		ns := newNamespace(t, env)
		sent := singleton(ns, "worker", 3)
		_, stderr, err := env.Kubectl(t, manifest(t, sent), "apply", "-f", "-")
		if err != nil {
			t.Fatalf("kubectl apply: %v\n%s", err, stderr)
		}
		for _, w := range expectedWarnings(t, sent) {
			if !strings.Contains(stderr, "Warning: "+w) {
				t.Errorf("kubectl stderr %q lacks the warning %q", stderr, w)
			}
		}
		if !strings.Contains(stderr, "spec.replicas forced from 3 to 1") {
			t.Errorf("kubectl stderr %q does not say replicas were forced from 3 to 1", stderr)
		}
		assertPinned(t, getDeployment(t, env, ns, "worker"))
	})

	t.Run("a server-side dry run shows the mutation and stores nothing", func(t *testing.T) {
		ns := newNamespace(t, env)
		stdout, stderr, err := env.Kubectl(t, manifest(t, singleton(ns, "worker", 3)),
			"apply", "--dry-run=server", "-o", "yaml", "-f", "-")
		if err != nil {
			t.Fatalf("kubectl apply --dry-run=server: %v\n%s", err, stderr)
		}
		shown := &appsv1.Deployment{}
		if err := yaml.Unmarshal([]byte(stdout), shown); err != nil {
			t.Fatalf("decode kubectl output: %v\n%s", err, stdout)
		}
		assertPinned(t, shown)
		_, err = env.Clientset.AppsV1().Deployments(ns).Get(ctxFor(t), "worker", metav1.GetOptions{})
		if !apierrors.IsNotFound(err) {
			t.Errorf("after a dry run: get returned %v, want NotFound", err)
		}
	})

	t.Run("an invalid trigger value is refused with the webhook's message", func(t *testing.T) {
		ns := newNamespace(t, env)
		d := deployment(ns, "typo", 3, map[string]string{"singleton": "yes"})
		_, wantErr := patches.Enabled(d.Annotations)
		if wantErr == nil {
			t.Fatal(`patches.Enabled accepts singleton: "yes"; the test needs a refused value`)
		}
		_, stderr, err := env.Kubectl(t, manifest(t, d), "apply", "-f", "-")
		if err == nil {
			t.Fatalf("kubectl apply succeeded; want a refusal")
		}
		for _, want := range []string{`admission webhook "deployments.singleton.dev" denied the request`, wantErr.Error()} {
			if !strings.Contains(stderr, want) {
				t.Errorf("kubectl stderr %q lacks %q", stderr, want)
			}
		}
		_, err = env.Clientset.AppsV1().Deployments(ns).Get(ctxFor(t), "typo", metav1.GetOptions{})
		if !apierrors.IsNotFound(err) {
			t.Errorf("after the refusal: get returned %v, want NotFound", err)
		}
	})

	t.Run("ordinary deployments are stored exactly as sent", func(t *testing.T) {
		cases := map[string]map[string]string{
			"without annotations":               nil,
			"with other annotations":            {"team": "payments"},
			`with singleton: "false" (opt-out)`: {"singleton": "false"},
		}
		for name, annotations := range cases {
			t.Run(name, func(t *testing.T) {
				ns := newNamespace(t, env)
				sent := deployment(ns, "web", 3, annotations)
				_, stderr, err := env.Kubectl(t, manifest(t, sent), "apply", "-f", "-")
				if err != nil {
					t.Fatalf("kubectl apply: %v\n%s", err, stderr)
				}
				if strings.Contains(stderr, "Warning") {
					t.Errorf("kubectl printed warnings for an ordinary deployment: %q", stderr)
				}
				assertUntouched(t, sent, getDeployment(t, env, ns, "web"))
			})
		}
	})

	t.Run("namespaces the configuration excludes are left alone, by the drift controller too", func(t *testing.T) {
		optOut := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
			GenerateName: "it-opt-out-", Labels: map[string]string{"singleton.dev/webhook": "disabled"},
		}}
		optOut, err := env.Clientset.CoreV1().Namespaces().Create(ctxFor(t), optOut, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("create namespace: %v", err)
		}
		createNamespace(t, env, "singleton-system")
		var sent []*appsv1.Deployment
		for _, ns := range []string{metav1.NamespaceSystem, "singleton-system", optOut.Name} {
			d := singleton(ns, "worker", 3)
			createDeployment(t, env, d)
			sent = append(sent, d)
		}
		// The drift controller sees these singletons too; give it time to
		// (wrongly) act before looking.
		time.Sleep(driftSettle)
		for _, d := range sent {
			t.Run(d.Namespace, func(t *testing.T) {
				assertUntouched(t, d, getDeployment(t, env, d.Namespace, d.Name))
			})
		}
	})

	t.Run("kubectl scale on a singleton stays at 1 with a warning", func(t *testing.T) {
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
	})

	t.Run("kubectl scale on an ordinary deployment is untouched", func(t *testing.T) {
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
	})

	t.Run("an HPA-style scale update of a singleton is pinned to 1", func(t *testing.T) {
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
	})

	t.Run("an HPA-style scale update of an ordinary deployment is untouched", func(t *testing.T) {
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
	})

	t.Run("applying the same manifest again changes nothing", func(t *testing.T) {
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
	})
}

func createDeployment(t *testing.T, env *testenv.Env, d *appsv1.Deployment) {
	t.Helper()
	if _, err := env.Clientset.AppsV1().Deployments(d.Namespace).Create(ctxFor(t), d, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create deployment %s/%s: %v", d.Namespace, d.Name, err)
	}
}

// assertUntouched fails unless the stored deployment has what was sent,
// field for field, and no annotation of the product.
func assertUntouched(t *testing.T, sent, stored *appsv1.Deployment) {
	t.Helper()
	if replicasOf(stored) != replicasOf(sent) {
		t.Errorf("replicas %s, sent %s", replicasOf(stored), replicasOf(sent))
	}
	if !apiequality.Semantic.DeepEqual(stored.Spec.Strategy, sent.Spec.Strategy) {
		t.Errorf("strategy %+v, sent %+v", stored.Spec.Strategy, sent.Spec.Strategy)
	}
	if !apiequality.Semantic.DeepEqual(stored.Spec.Template.Spec.Containers[0].Image, sent.Spec.Template.Spec.Containers[0].Image) ||
		len(stored.Spec.Template.Spec.Containers) != len(sent.Spec.Template.Spec.Containers) ||
		len(stored.Spec.Template.Spec.InitContainers) != 0 {
		t.Errorf("pod template changed: containers %+v, init containers %+v",
			stored.Spec.Template.Spec.Containers, stored.Spec.Template.Spec.InitContainers)
	}
	for k := range stored.Annotations {
		if strings.HasPrefix(k, patches.Prefix) {
			t.Errorf("annotation %s added to an ordinary deployment", k)
		}
	}
	for k, v := range sent.Annotations {
		if stored.Annotations[k] != v {
			t.Errorf("annotation %s: stored %q, sent %q", k, stored.Annotations[k], v)
		}
	}
}
