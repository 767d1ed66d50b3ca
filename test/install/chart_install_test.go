//go:build integration

package install

import (
	"context"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/singleton-webhook/singleton-webhook/internal/certmanager"
	"github.com/singleton-webhook/singleton-webhook/internal/testenv"
)

// TestChartHelmInstall installs the chart with `helm install`, as a user
// would, into a real API server with the real cert-manager running
// in-process: every object of the chart is created, cert-manager issues the
// serving certificate from the chart's CA chain and cainjector puts that CA
// into the webhook configuration; `helm upgrade` with the same values
// changes no object, and `helm uninstall` removes the webhook configuration,
// so nothing is left that could refuse a write.
func TestChartHelmInstall(t *testing.T) {
	crds, err := certmanager.CRDDir()
	if err != nil {
		t.Fatal(err)
	}
	env := testenv.Start(t, testenv.Options{CRDDirectoryPaths: []string{crds}, SkipWebhookConfiguration: true})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cm := startCertManager(ctx, t, env.Kubeconfig)

	install := append([]string{"install", "singleton-webhook", chartDir, "--namespace", systemNamespace,
		"--create-namespace", "--kubeconfig", env.Kubeconfig}, chartTestValues()...)
	if _, err := helm(t, install...); err != nil {
		t.Fatal(err)
	}
	objs := renderChart(t, append(chartTestValues(), "--no-hooks")...) // hooks run at uninstall only
	for _, o := range objs {
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(o), emptyLike(o)); err != nil {
			t.Errorf("helm install did not create %s: %v", objectKey(o), err)
		}
	}
	// The chart's self-restraint policy holds the webhook's ServiceAccount.
	if err := testenv.WaitForSelfRestraint(ctx, env.Config); err != nil {
		t.Errorf("after helm install: %v", err)
	}
	caPEM := checkIssued(ctx, t, env, waitIssued(ctx, t, env, cm, 1))
	waitInjected(ctx, t, env, caPEM)

	before := chartResourceVersions(ctx, t, env, objs)
	upgrade := append([]string{"upgrade", "singleton-webhook", chartDir, "--namespace", systemNamespace,
		"--kubeconfig", env.Kubeconfig}, chartTestValues()...)
	if _, err := helm(t, upgrade...); err != nil {
		t.Fatal(err)
	}
	after := chartResourceVersions(ctx, t, env, objs)
	for k, v := range before {
		if after[k] != v {
			t.Errorf("helm upgrade with the same values changed %s (resourceVersion %s, then %s)", k, v, after[k])
		}
	}

	// --no-hooks: this API server runs no Job controller, so the release
	// hook's Job would never complete (TestChartRunsInCluster runs it on a
	// whole cluster).
	out, err := helm(t, "uninstall", "singleton-webhook", "--namespace", systemNamespace, "--no-hooks", "--kubeconfig", env.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "uninstalled") {
		t.Errorf("helm uninstall said %q", out)
	}
	_, err = env.Clientset.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, webhookConfig, metav1.GetOptions{})
	if !apierrors.IsNotFound(err) {
		t.Errorf("after helm uninstall, the webhook configuration: %v, want not found", err)
	}
}

// emptyLike returns an empty object of o's kind, to Get into.
func emptyLike(o *unstructured.Unstructured) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(o.GroupVersionKind())
	return u
}

// chartResourceVersions maps every object of the chart, but the
// webhook configuration (cainjector writes its caBundle), to its
// resourceVersion.
func chartResourceVersions(ctx context.Context, t *testing.T, env *testenv.Env, objs []*unstructured.Unstructured) map[string]string {
	t.Helper()
	rv := map[string]string{}
	for _, o := range objs {
		if o.GetKind() == "MutatingWebhookConfiguration" || o.GetKind() == "Certificate" {
			continue // written by cert-manager: status, caBundle
		}
		got := emptyLike(o)
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(o), got); err != nil {
			t.Fatalf("get %s: %v", objectKey(o), err)
		}
		rv[objectKey(o)] = got.GetResourceVersion()
	}
	return rv
}
