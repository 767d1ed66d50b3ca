//go:build integration

package integration

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/singleton-webhook/singleton-webhook/certs"
	"github.com/singleton-webhook/singleton-webhook/internal/app"
	"github.com/singleton-webhook/singleton-webhook/internal/testenv"
	"github.com/singleton-webhook/singleton-webhook/patches"
)

// labelWithin is how soon after the webhook starts a singleton annotated
// before the install must carry the singleton label.
const labelWithin = 15 * time.Second

// TestCachesHoldOnlySingletons creates ordinary Deployments and singletons
// annotated before the install, then installs and starts the webhook: the
// start list labels (and pins) the earlier singletons without rolling a
// conforming one, admission labels new ones, and the cache serve builds
// (app.NewManager) holds the labelled singletons only.
func TestCachesHoldOnlySingletons(t *testing.T) {
	t.Parallel() // each test runs a control plane of its own
	env := testenv.Start(t, testenv.Options{SkipWebhookConfiguration: true})
	ns := newNamespace(t, env)
	const plain = 50
	for i := range plain {
		createDeployment(t, env, deployment(ns, fmt.Sprintf("plain-%d", i), 2, nil))
	}
	// Before the install: nothing admits them.
	createDeployment(t, env, singleton(ns, "legacy", 3))
	conforming := singleton(ns, "legacy-deny", 1)
	if _, err := patches.Apply(conforming, patches.Policy{}); err != nil {
		t.Fatal(err)
	}
	delete(conforming.Labels, patches.LabelMode)
	conforming.Annotations[patches.AnnotationEnforcement] = string(patches.EnforcementDeny)
	createDeployment(t, env, conforming)
	before := getDeployment(t, env, ns, "legacy-deny")
	for _, name := range []string{"legacy", "legacy-deny"} {
		if l := getDeployment(t, env, ns, name).Labels; l[patches.LabelMode] != "" {
			t.Fatalf("%s carries %s=%s before the install", name, patches.LabelMode, l[patches.LabelMode])
		}
	}

	env.InstallWebhookConfiguration(t, env.CABundle)
	env.StartWebhook(t, testenv.WebhookOptions{})
	createDeployment(t, env, singleton(ns, "admitted", 3))

	t.Run("admission labels a new singleton", func(t *testing.T) {
		d := getDeployment(t, env, ns, "admitted")
		if got := d.Labels[patches.LabelMode]; got != string(patches.ModeReplicas) {
			t.Errorf("label %s=%q, want %s", patches.LabelMode, got, patches.ModeReplicas)
		}
		if _, ok := d.Spec.Template.Labels[patches.LabelMode]; ok {
			t.Errorf("the pod template carries %s: it would roll the Deployment", patches.LabelMode)
		}
	})
	t.Run("the start list labels and pins a singleton annotated before the install", func(t *testing.T) {
		eventually(t, labelWithin, "legacy labelled", func() (bool, string) {
			d := getDeployment(t, env, ns, "legacy")
			return d.Labels[patches.LabelMode] == string(patches.ModeReplicas) && replicasOf(d) == "1",
				fmt.Sprintf("labels %v, replicas %s", d.Labels, replicasOf(d))
		})
		assertPinned(t, getDeployment(t, env, ns, "legacy"))
	})
	t.Run("a conforming deny-mode singleton gains the label and does not roll", func(t *testing.T) {
		eventually(t, labelWithin, "legacy-deny labelled", func() (bool, string) {
			d := getDeployment(t, env, ns, "legacy-deny")
			return d.Labels[patches.LabelMode] == string(patches.ModeReplicas), fmt.Sprintf("labels %v", d.Labels)
		})
		after := getDeployment(t, env, ns, "legacy-deny")
		if after.Generation != before.Generation {
			t.Errorf("generation %d, was %d: the label changed the spec", after.Generation, before.Generation)
		}
	})
	t.Run("the scale of a singleton the start list labelled is pinned, of an ordinary one kept", func(t *testing.T) {
		cs, warned := warningClient(t, env)
		api := cs.AppsV1().Deployments(ns)
		for name, want := range map[string]int32{"legacy": 1, "plain-0": 5} {
			scale, err := api.GetScale(ctxFor(t), name, metav1.GetOptions{})
			if err != nil {
				t.Fatalf("get scale of %s: %v", name, err)
			}
			scale.Spec.Replicas = 5
			got, err := api.UpdateScale(ctxFor(t), name, scale, metav1.UpdateOptions{})
			if err != nil {
				t.Fatalf("update scale of %s: %v", name, err)
			}
			if got.Spec.Replicas != want {
				t.Errorf("%s: scale answered %d replicas, want %d", name, got.Spec.Replicas, want)
			}
		}
		if !strings.Contains(warned.String(), "spec.replicas forced from 5 to 1") {
			t.Errorf("warnings %q lack the scale warning", warned)
		}
	})
	t.Run("the cache of serve holds the labelled singletons only", func(t *testing.T) {
		got := cachedDeployments(t, env, ns)
		want := []string{"admitted", "legacy", "legacy-deny"}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("cached Deployments %v, want %v (of %d in the namespace)", got, want, plain+len(want))
		}
	})
	t.Run("a singleton that stops being one loses the label and leaves the cache", func(t *testing.T) {
		d := getDeployment(t, env, ns, "admitted")
		d.Annotations[patches.AnnotationSingleton] = "false"
		if _, err := env.Clientset.AppsV1().Deployments(ns).Update(ctxFor(t), d, metav1.UpdateOptions{}); err != nil {
			t.Fatalf("update: %v", err)
		}
		if l, ok := getDeployment(t, env, ns, "admitted").Labels[patches.LabelMode]; ok {
			t.Errorf("label %s=%s kept", patches.LabelMode, l)
		}
		if got, want := cachedDeployments(t, env, ns), []string{"legacy", "legacy-deny"}; fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("cached Deployments %v, want %v", got, want)
		}
	})
}

// cachedDeployments starts the cache of a manager serve would build and
// returns the names of the Deployments of ns it holds, as the controllers
// and the scale handler read them (metadata only).
func cachedDeployments(t *testing.T, env *testenv.Env, ns string) []string {
	t.Helper()
	cfg := &app.ServeConfig{
		Cert:           certs.NewFiles(filepath.Join(env.CertDir, "tls.crt"), filepath.Join(env.CertDir, "tls.key")),
		ProbeAddress:   "0",
		MetricsAddress: "0",
	}
	mgr, err := app.NewManager(env.Config, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- mgr.GetCache().Start(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("cache: %v", err)
		}
	}()
	if !mgr.GetCache().WaitForCacheSync(ctx) {
		t.Fatal("the cache did not start")
	}
	list := &metav1.PartialObjectMetadataList{}
	list.SetGroupVersionKind(appsv1.SchemeGroupVersion.WithKind("DeploymentList"))
	if err := mgr.GetCache().List(ctx, list); err != nil {
		t.Fatalf("list the cache: %v", err)
	}
	var names []string
	for _, m := range list.Items {
		if m.Namespace == ns {
			names = append(names, m.Name)
		}
	}
	slices.Sort(names)
	return names
}
