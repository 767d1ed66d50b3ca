//go:build integration

package integration

import (
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
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
// and kubectl, the webhook up for the whole test. Every case works in a
// namespace of its own.
func TestAdmission(t *testing.T) {
	t.Parallel() // each test runs a control plane of its own
	env := testenv.Start(t, testenv.Options{})
	env.StartWebhook(t, testenv.WebhookOptions{})
	cases := map[string]func(*testing.T, *testenv.Env){
		"a singleton created with 3 replicas and a rolling update is stored with 1 and Recreate": createPins,
		"kubectl apply prints the webhook's warnings":                                            kubectlApplyWarns,
		"a server-side dry run shows the mutation and stores nothing":                            dryRunStoresNothing,
		"an invalid trigger value is refused with the webhook's message":                         invalidTriggerRefused,
		"ordinary deployments are stored exactly as sent":                                        ordinaryUntouched,
		"namespaces the configuration excludes are left alone, by the drift controller too":      excludedNamespacesUntouched,
		"kubectl scale on a singleton stays at 1 with a warning":                                 kubectlScaleSingleton,
		"kubectl scale on an ordinary deployment is untouched":                                   kubectlScaleOrdinary,
		"an HPA-style scale update of a singleton is pinned to 1":                                updateScaleSingleton,
		"an HPA-style scale update of an ordinary deployment is untouched":                       updateScaleOrdinary,
		"applying the same manifest again changes nothing":                                       applyTwiceUnchanged,
		"an election-mode singleton naming a foreign Lease is admitted with a warning":           foreignLeaseWarned,
	}
	for name, test := range cases {
		t.Run(name, func(t *testing.T) { test(t, env) })
	}
}

func createPins(t *testing.T, env *testenv.Env) {
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
}

func kubectlApplyWarns(t *testing.T, env *testenv.Env) {
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
}

func dryRunStoresNothing(t *testing.T, env *testenv.Env) {
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
}

func invalidTriggerRefused(t *testing.T, env *testenv.Env) {
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
}

func ordinaryUntouched(t *testing.T, env *testenv.Env) {
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
}

func excludedNamespacesUntouched(t *testing.T, env *testenv.Env) {
	optOut := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		GenerateName: "it-opt-out-", Labels: map[string]string{"singleton.dev/webhook": "disabled"},
	}}
	optOut, err := env.Clientset.CoreV1().Namespaces().Create(ctxFor(t), optOut, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	// singleton-system exists: testenv.Start installed the webhook's own
	// namespace with its identity.
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
