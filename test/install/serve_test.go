//go:build integration

package install

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/singleton-webhook/singleton-webhook/controllers"
	"github.com/singleton-webhook/singleton-webhook/internal/certmanager"
	"github.com/singleton-webhook/singleton-webhook/internal/testenv"
	"github.com/singleton-webhook/singleton-webhook/internal/testutil"
	"github.com/singleton-webhook/singleton-webhook/patches"
)

// TestServeRunsWithInstallArgsAndRBAC runs the product binary, built as
// `make build` builds it (and so as the Dockerfile does), with the exact
// args of the installed Deployment, as the webhook's ServiceAccount with
// only the RBAC of the install, and registers it with the API server. It
// must then mutate through the API server (the Deployment entry, and the
// scale entry whose parent lookup needs the metadata cache), inject the
// elector image the install configured, bind the elector's ServiceAccount
// and create a leader Service, without a single "forbidden" from the API
// server.
//
// What differs from a Pod is overridden by flags appended after the
// Deployment's own (the last value of a flag wins): the cluster address
// (--kubeconfig, impersonating the ServiceAccount, instead of the in-cluster
// token), the ports and the certificate directory (a test machine's), and
// --leader-election-namespace, which controller-runtime finds by itself
// only in a Pod: the controllers really take their Lease under the install's
// RBAC before they run.
func TestServeRunsWithInstallArgsAndRBAC(t *testing.T) {
	crds, err := certmanager.CRDDir()
	if err != nil {
		t.Fatal(err)
	}
	env := testenv.Start(t, testenv.Options{CRDDirectoryPaths: []string{crds}, SkipWebhookConfiguration: true})
	in := renderInstall(t)
	bin := testutil.Product(t)
	var objs []*unstructured.Unstructured
	for _, o := range in.objects {
		// Installed below, pointing at the local binary instead of a Service.
		if o.GetKind() != "MutatingWebhookConfiguration" {
			objs = append(objs, o)
		}
	}
	if _, _, err := env.Kubectl(t, encode(t, objs), "apply", "--server-side", "-f", "-"); err != nil {
		t.Fatalf("apply the install: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	probe, metrics := testutil.FreeAddr(t), testutil.FreeAddr(t)
	args := append(expandArgs(webhookContainer(t, in)),
		"--kubeconfig="+serviceAccountKubeconfig(t, env),
		"--webhook-cert-path="+env.CertDir,
		fmt.Sprintf("--webhook-port=%d", env.WebhookPort),
		"--health-probe-bind-address="+probe,
		"--metrics-bind-address="+metrics,
		"--leader-election-namespace=singleton-system",
	)
	logs, pid := runProduct(t, bin, args)
	waitReady(ctx, t, "http://"+probe+"/readyz", logs)
	env.InstallWebhookConfiguration(t, env.CABundle)
	if err := testenv.WaitForMutation(ctx, env.Config); err != nil {
		t.Fatalf("the API server does not mutate through the binary: %v\n%s", err, logs.String())
	}

	checkServing(ctx, t, env)
	checkMetrics(ctx, t, env, "https://"+metrics+"/metrics")
	lease, err := env.Clientset.CoordinationV1().Leases("singleton-system").Get(ctx, "singleton-webhook.singleton.dev", metav1.GetOptions{})
	if err != nil || lease.Spec.HolderIdentity == nil || *lease.Spec.HolderIdentity == "" {
		t.Errorf("the controllers' election Lease is not held: %v, %+v", err, lease)
	}
	checkMemory(t, pid, webhookContainer(t, in))
	if refused := forbidden(logs.String()); len(refused) > 0 {
		t.Errorf("the API server refused the webhook with the install's RBAC:\n%s", strings.Join(refused, "\n"))
	}
}

// checkMetrics scrapes /metrics, which the binary guards with TokenReviews
// and SubjectAccessReviews made under the install's RBAC: refused without a
// token, served to a ServiceAccount bound to the install's metrics-reader
// ClusterRole.
func checkMetrics(ctx context.Context, t *testing.T, env *testenv.Env, url string) {
	t.Helper()
	if code, body := testutil.Scrape(ctx, t, url, ""); code != http.StatusUnauthorized {
		t.Errorf("scrape without a token: HTTP %d, want 401: %s", code, body)
	}
	token := testutil.ScraperToken(ctx, t, env.Clientset, "singleton-system", "prometheus", "singleton-webhook-metrics-reader")
	code, body := testutil.Scrape(ctx, t, url, token)
	if code != http.StatusOK || !strings.Contains(body, "singleton_webhook_admissions_total") {
		t.Errorf("scrape by a metrics reader: HTTP %d, want 200 with the admission counters: %.300s", code, body)
	}
}

// forbidden returns the first few log lines that report a refusal.
func forbidden(logs string) []string {
	var lines []string
	for _, l := range strings.Split(logs, "\n") {
		if strings.Contains(strings.ToLower(l), "forbidden") && len(lines) < 5 {
			lines = append(lines, l)
		}
	}
	return lines
}

// checkServing writes singleton Deployments through the API server and
// checks what the binary and its controllers do with them.
func checkServing(ctx context.Context, t *testing.T, env *testenv.Env) {
	t.Helper()
	const ns = "team-a"
	cs := env.Clientset
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pinned := loadDeployment("pinned")
	pinned.Namespace = ns
	got, err := cs.AppsV1().Deployments(ns).Create(ctx, pinned, metav1.CreateOptions{})
	if err != nil || *got.Spec.Replicas != 1 {
		t.Fatalf("create a singleton Deployment: %v (want it pinned to 1 replica)", err)
	}
	waitFor(ctx, t, "kubectl scale is pinned: the scale handler finds the parent in its metadata cache", func(ctx context.Context) (bool, error) {
		sc, err := cs.AppsV1().Deployments(ns).GetScale(ctx, "pinned", metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		sc.Spec.Replicas = 3
		sc, err = cs.AppsV1().Deployments(ns).UpdateScale(ctx, "pinned", sc, metav1.UpdateOptions{})
		return err == nil && sc.Spec.Replicas == 1, nil
	})

	elected := loadDeployment("elected")
	elected.Namespace = ns
	elected.Annotations["singleton.dev/mode"] = "election"
	elected.Annotations["singleton.dev/leader-service"] = "true"
	elected.Spec.Template.Spec.ServiceAccountName = "app"
	got, err = cs.AppsV1().Deployments(ns).Create(ctx, elected, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create an election-mode Deployment: %v", err)
	}
	if img := electorImage(got); img != testImage {
		t.Errorf("injected elector image = %q, want the install's image %q", img, testImage)
	}
	waitFor(ctx, t, "the elector RBAC controller binds ServiceAccount app to the Role on Lease elected", func(ctx context.Context) (bool, error) {
		rb, err := cs.RbacV1().RoleBindings(ns).Get(ctx, controllers.RoleBindingPrefix+"elected", metav1.GetOptions{})
		return err == nil && rb.RoleRef.Kind == "Role" && rb.Subjects[0].Name == "app", nil
	})
	waitFor(ctx, t, "the leader Service controller creates Service elected-leader", func(ctx context.Context) (bool, error) {
		_, err := cs.CoreV1().Services(ns).Get(ctx, "elected-leader", metav1.GetOptions{})
		return err == nil, nil
	})
}

// electorImage returns the image of the injected sidecar, native or not.
func electorImage(d *appsv1.Deployment) string {
	spec := d.Spec.Template.Spec
	for _, c := range append(spec.InitContainers, spec.Containers...) {
		if c.Name == patches.ElectorContainerName {
			return c.Image
		}
	}
	return ""
}

func waitFor(ctx context.Context, t *testing.T, what string, cond wait.ConditionWithContextFunc) {
	t.Helper()
	if err := wait.PollUntilContextTimeout(ctx, poll, 30*time.Second, true, cond); err != nil {
		t.Errorf("%s: %v", what, err)
	}
}

// expandArgs returns the container's args with $(VAR) references to its env
// expanded, as the kubelet does.
func expandArgs(c corev1.Container) []string {
	var args []string
	for _, a := range c.Args {
		for _, e := range c.Env {
			a = strings.ReplaceAll(a, "$("+e.Name+")", e.Value)
		}
		args = append(args, a)
	}
	return args
}

// serviceAccountKubeconfig writes a kubeconfig for the control plane that
// impersonates the webhook's ServiceAccount: the API server then authorizes
// every request with that account's RBAC only.
func serviceAccountKubeconfig(t *testing.T, env *testenv.Env) string {
	t.Helper()
	cfg := env.Config
	kc := clientcmdapi.NewConfig()
	kc.Clusters["envtest"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos["admin-as-webhook"] = &clientcmdapi.AuthInfo{
		ClientCertificateData: cfg.CertData, ClientKeyData: cfg.KeyData, Token: cfg.BearerToken,
		Impersonate: webhookUser,
	}
	kc.Contexts["webhook"] = &clientcmdapi.Context{Cluster: "envtest", AuthInfo: "admin-as-webhook"}
	kc.CurrentContext = "webhook"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// runProduct starts the binary; t.Cleanup stops it with SIGTERM, as the
// kubelet would, and logs what it printed.
func runProduct(t *testing.T, bin string, args []string) (*testutil.SyncBuffer, int) {
	t.Helper()
	logs := &testutil.SyncBuffer{}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-done:
			t.Logf("singleton-webhook %s exited: %v", strings.Join(args, " "), err)
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			t.Errorf("singleton-webhook did not stop within 30s of SIGTERM")
		}
		if t.Failed() {
			t.Logf("singleton-webhook output:\n%s", logs.String())
		}
	})
	return logs, cmd.Process.Pid
}

// checkMemory reads the peak resident memory of the process (VmHWM) and
// checks it against the container's memory limit, and logs both: the
// Deployment's requests and limits are sized from this number.
func checkMemory(t *testing.T, pid int, c corev1.Container) {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatalf("read the webhook's memory use: %v", err)
	}
	var kib int64
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmHWM:") {
			if _, err := fmt.Sscanf(strings.TrimPrefix(l, "VmHWM:"), "%d kB", &kib); err != nil {
				t.Fatalf("parse %q: %v", l, err)
			}
		}
	}
	peak := kib * 1024
	limit := c.Resources.Limits.Memory().Value()
	request := c.Resources.Requests.Memory().Value()
	t.Logf("serve peak RSS %d MiB (request %d MiB, limit %d MiB)", peak>>20, request>>20, limit>>20)
	if peak == 0 || limit == 0 || peak > limit {
		t.Errorf("serve peak RSS %d bytes does not fit the Deployment's memory limit %d", peak, limit)
	}
}

// waitReady polls the readiness probe the Deployment uses.
func waitReady(ctx context.Context, t *testing.T, url string, logs *testutil.SyncBuffer) {
	t.Helper()
	err := wait.PollUntilContextTimeout(ctx, poll, time.Minute, true, func(ctx context.Context) (bool, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return false, err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false, nil
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
	if err != nil {
		t.Fatalf("singleton-webhook never became ready at %s: %v\n%s", url, err, logs.String())
	}
}
