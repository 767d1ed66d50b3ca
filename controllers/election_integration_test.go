//go:build integration

package controllers_test

// Election-mode controllers against a real kube-apiserver (internal/testenv):
// the webhook serves admission as usual, and the election controllers run in
// a manager of their own that impersonates the webhook's ServiceAccount, with
// only the permissions manifests/rbac.yaml grants it. A missing verb there
// shows up here as a binding or Service that never appears.

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/singleton-webhook/singleton-webhook/controllers"
	"github.com/singleton-webhook/singleton-webhook/internal/testenv"
	"github.com/singleton-webhook/singleton-webhook/patches"
)

const (
	// webhookNamespace is the webhook's namespace in manifests/.
	webhookNamespace = "singleton-system"
	// webhookUser is the webhook's ServiceAccount in manifests/.
	webhookUser = "system:serviceaccount:" + webhookNamespace + ":singleton-webhook"
	// waitFor bounds every wait for a controller to converge.
	waitFor = 30 * time.Second
)

// startElection starts a control plane, the webhook (admission + drift)
// and the election controllers as the webhook's ServiceAccount.
func startElection(t *testing.T, p patches.Policy) *testenv.Env {
	t.Helper()
	env := startWebhookOnly(t, p)
	t.Cleanup(startElectionControllers(t, env, p))
	return env
}

// startWebhookOnly starts a control plane and the webhook (admission +
// drift), and grants the webhook's ServiceAccount its RBAC.
func startWebhookOnly(t *testing.T, p patches.Policy) *testenv.Env {
	t.Helper()
	env := testenv.Start(t, testenv.Options{})
	env.StartWebhook(t, testenv.WebhookOptions{Policy: p, Controllers: []string{"drift"}})
	for _, f := range []string{"namespace.yaml", "serviceaccount.yaml", "rbac.yaml"} {
		if _, stderr, err := env.Kubectl(t, "", "apply", "-f", filepath.Join(env.Root, "manifests", f)); err != nil {
			t.Fatalf("apply manifests/%s: %v: %s", f, err, stderr)
		}
	}
	return env
}

// startElectionControllers starts the election controllers in a manager of
// their own as the webhook's ServiceAccount, with a fresh cache, and returns
// what stops them.
func startElectionControllers(t *testing.T, env *testenv.Env, p patches.Policy) (stop func()) {
	t.Helper()
	cfg := rest.CopyConfig(env.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: webhookUser}
	skip := true
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Cache:                  cache.Options{DefaultTransform: cache.TransformStripManagedFields(), ByObject: controllers.CacheByObject()},
		Controller:             config.Controller{SkipNameValidation: &skip},
	})
	if err != nil {
		t.Fatalf("create controller manager: %v", err)
	}
	if err := controllers.SetupElection(mgr, p, controllers.DefaultScope(webhookNamespace)); err != nil {
		t.Fatalf("set up election controllers: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	var once sync.Once
	return func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("controller manager: %v", err)
			}
		})
	}
}

// ctxFor is a context bounded by waitFor, cancelled at the end of the test.
func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	t.Cleanup(cancel)
	return ctx
}

// eventually polls cond until it holds, failing the test with its last
// explanation after waitFor.
func eventually(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for {
		ok, why := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s: %s", what, waitFor, why)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func newNamespace(t *testing.T, env *testenv.Env) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "election-"}}
	if err := env.Client.Create(ctxFor(t), ns); err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	return ns.Name
}

// electionDeployment is what a user writes for election mode: a
// restricted-compliant app, and the annotations given.
func electionDeployment(ns, name, sa string, replicas int32, annotations map[string]string, ports ...corev1.ContainerPort) *appsv1.Deployment {
	a := map[string]string{patches.AnnotationSingleton: "true", patches.AnnotationMode: "election"}
	for k, v := range annotations {
		a[k] = v
	}
	labels := map[string]string{"app": name}
	yes, no := true, false
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Annotations: a},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{ServiceAccountName: sa, Containers: []corev1.Container{{
					Name: "app", Image: "registry.k8s.io/pause:3.10", Ports: ports,
					SecurityContext: &corev1.SecurityContext{
						RunAsNonRoot: &yes, AllowPrivilegeEscalation: &no,
						Capabilities:   &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
						SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
					},
				}}},
			},
		},
	}
}

// updateDeployment applies change to the stored Deployment, retrying on
// conflicts (the controllers and the API server write too).
func updateDeployment(t *testing.T, env *testenv.Env, ns, name string, change func(*appsv1.Deployment)) {
	t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		d := &appsv1.Deployment{}
		if err := env.Client.Get(ctxFor(t), client.ObjectKey{Namespace: ns, Name: name}, d); err != nil {
			return err
		}
		change(d)
		return env.Client.Update(ctxFor(t), d)
	})
	if err != nil {
		t.Fatalf("update deployment %s: %v", name, err)
	}
}
