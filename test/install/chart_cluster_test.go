//go:build integration

package install

import (
	"context"
	"fmt"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/singleton-webhook/singleton-webhook/internal/certmanager"
	"github.com/singleton-webhook/singleton-webhook/internal/cluster"
	"github.com/singleton-webhook/singleton-webhook/internal/testutil"
)

// TestChartRunsInCluster installs the chart with `helm install` into a
// whole cluster, the one `make run` starts (controller manager, scheduler,
// simulated nodes), with the real cert-manager in-process and the release
// namespace under Pod Security "restricted", as docs/install.md says to:
// the webhook's Deployment rolls out both replicas, admitted by the API
// server's Pod Security admission and scheduled on nodes; cert-manager
// issues the serving Secret the Pods mount; and the PodDisruptionBudget
// allows one disruption, no more.
//
// Then, in the same cluster, the ways out (uninstall_test.go): `helm
// uninstall` with its pre-delete hook run, and the kustomize install and
// its documented removal, each with singletons of both modes live.
func TestChartRunsInCluster(t *testing.T) {
	crds, err := certmanager.CRDDir()
	if err != nil {
		t.Fatal(err)
	}
	bin := testutil.Product(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	start := time.Now()
	cl, err := cluster.Start(ctx, cluster.Options{Dir: t.TempDir(), CRDDirectoryPaths: []string{crds},
		JobsRunByTest: []string{releaseJob}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := cl.Stop(); err != nil {
			t.Errorf("stop the cluster: %v", err)
		}
	})
	startCertManager(ctx, t, cl.Kubeconfig)
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: systemNamespace, Labels: map[string]string{
		"pod-security.kubernetes.io/enforce": "restricted",
	}}}
	if _, err := cl.Clientset.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	install := append([]string{"install", "singleton-webhook", chartDir, "--namespace", systemNamespace,
		"--kubeconfig", cl.Kubeconfig}, chartTestValues()...)
	if _, err := helm(t, install...); err != nil {
		t.Fatal(err)
	}

	d := waitRolledOut(ctx, t, cl, 2)
	pods, err := cl.Clientset.CoreV1().Pods(systemNamespace).List(ctx, metav1.ListOptions{
		LabelSelector: metav1.FormatLabelSelector(d.Spec.Selector)})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pods.Items {
		if p.Spec.NodeName == "" || p.Status.Phase != corev1.PodRunning {
			t.Errorf("pod %s: node %q, phase %s; want scheduled and running", p.Name, p.Spec.NodeName, p.Status.Phase)
		}
	}
	pollUntil(ctx, t, "the serving Secret", func(ctx context.Context) (bool, string) {
		s, err := cl.Clientset.CoreV1().Secrets(systemNamespace).Get(ctx, servingSecret, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		return len(s.Data["tls.crt"]) > 0 && len(s.Data["tls.key"]) > 0, "no tls.crt or tls.key yet"
	})
	pollUntil(ctx, t, "the PodDisruptionBudget to allow one disruption", func(ctx context.Context) (bool, string) {
		pdb, err := cl.Clientset.PolicyV1().PodDisruptionBudgets(systemNamespace).Get(ctx, "singleton-webhook", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		st := pdb.Status
		return st.CurrentHealthy == 2 && st.DisruptionsAllowed == 1,
			fmt.Sprintf("healthy %d, disruptions allowed %d", st.CurrentHealthy, st.DisruptionsAllowed)
	})
	t.Logf("cluster, helm install and its checks: %s", time.Since(start).Round(100*time.Millisecond))

	start = time.Now()
	if !t.Run("HelmUninstall", func(t *testing.T) { checkHelmUninstall(ctx, t, cl, bin) }) {
		return
	}
	t.Logf("helm uninstall proof: %s", time.Since(start).Round(100*time.Millisecond))
	start = time.Now()
	t.Run("KustomizeUninstall", func(t *testing.T) { checkKustomizeUninstall(ctx, t, cl, bin) })
	t.Logf("kustomize uninstall proof: %s", time.Since(start).Round(100*time.Millisecond))
}

// waitRolledOut waits until the webhook's Deployment has replicas updated
// and available Pods.
func waitRolledOut(ctx context.Context, t *testing.T, cl *cluster.Cluster, replicas int32) *appsv1.Deployment {
	t.Helper()
	var d *appsv1.Deployment
	pollUntil(ctx, t, "the webhook's Deployment to roll out", func(ctx context.Context) (bool, string) {
		var err error
		d, err = cl.Clientset.AppsV1().Deployments(systemNamespace).Get(ctx, "singleton-webhook", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		st := d.Status
		return st.UpdatedReplicas == replicas && st.AvailableReplicas == replicas && st.ObservedGeneration == d.Generation,
			fmt.Sprintf("updated %d, available %d, conditions %+v", st.UpdatedReplicas, st.AvailableReplicas, st.Conditions)
	})
	return d
}

// pollUntil polls cond for up to two minutes, failing the test with what cond
// last said.
func pollUntil(ctx context.Context, t *testing.T, what string, cond func(context.Context) (bool, string)) {
	t.Helper()
	var last string
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		var ok bool
		ok, last = cond(ctx)
		return ok, nil
	})
	if err != nil {
		t.Fatalf("waiting for %s: %v (last: %s)", what, err, last)
	}
}
