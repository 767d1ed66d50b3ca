//go:build integration

package install

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/singleton-webhook/singleton-webhook/internal/cluster"
	"github.com/singleton-webhook/singleton-webhook/internal/testenv"
	"github.com/singleton-webhook/singleton-webhook/internal/testutil"
	"github.com/singleton-webhook/singleton-webhook/patches"
)

// The uninstall proofs (docs/install.md, "Uninstall"), run in the cluster
// of TestChartRunsInCluster: `helm uninstall` with its pre-delete hook,
// then the kustomize install and its documented removal, each with a
// replicas-mode and an election-mode singleton live.
//
// What is simulated, and how: the nodes are kwok's, so no container runs
// by itself. The test runs the product binary in their place, as the Pod
// would run it:
//   - the webhook: `serve` with the args of the installed Deployment's
//     container, authenticated with a token of its ServiceAccount bound to
//     one of its Pods (TokenRequest), as the kubelet mounts it; only what
//     a Pod has and a test machine has not is overridden (the serving
//     certificate: self-signed for 127.0.0.1; ports; the Lease namespace).
//     The webhook configuration is then pointed at it: clientConfig.url and
//     the local CA instead of the Service and cainjector's CA (its
//     cert-manager.io/inject-ca-from annotation removed, or cainjector would
//     put the Service's CA back). When the Deployment's Pods terminate, the
//     process is stopped and the Pods marked stopped (their containers
//     exited on SIGTERM).
//   - the pre-delete hook: the cluster leaves the Job's Pods to the test
//     (cluster.Options.JobsRunByTest); the test runs their container's
//     command line exactly as helm created it, with a token of the Job's
//     ServiceAccount bound to the Pod, and sets the Pod Succeeded or Failed
//     from the exit code, so the Job controller completes the Job, or
//     retries it, and helm goes on (or stops). The first attempt is
//     interrupted halfway (SIGTERM, as an eviction sends): the retry must
//     finish the release.

// releaseJob is the chart's pre-delete hook Job.
const releaseJob = "singleton-webhook-release"

// uninstallGrace is the termination grace period of the test singletons:
// what a Recreate rollout waits for, and the bound on a replacement.
const uninstallGrace = 5

// entrypoint is the image's ENTRYPOINT (Dockerfile): a container with no
// command runs the product binary.
const entrypoint = "/singleton-webhook"

// checkHelmUninstall runs `helm uninstall` (hooks on) with singletons live
// and checks that the hook released them, its first attempt interrupted
// halfway and the Job's retry finishing the work, that the webhook is gone,
// and that a deleted Pod of each singleton is replaced.
func checkHelmUninstall(ctx context.Context, t *testing.T, cl *cluster.Cluster, bin string) {
	serve := serveAsPod(ctx, t, cl, bin)
	defer serve.stop()
	const ns = "apps-helm"
	applySingletons(ctx, t, cl, ns)
	before := replicaSetCount(ctx, t, cl, ns)

	type result struct {
		out  string
		took time.Duration
		err  error
	}
	done := make(chan result, 1)
	start := time.Now()
	uninstall := helmCommand(t, "uninstall", "singleton-webhook", "--namespace", systemNamespace, "--kubeconfig", cl.Kubeconfig, "--timeout", "3m")
	go func() {
		out, err := uninstall.CombinedOutput()
		done <- result{string(out), time.Since(start), err}
	}()
	// The first attempt is interrupted once it has released solo, before
	// solo's rollout finished (its container killed, as an eviction would):
	// the Job controller retries, and the retry must finish the work.
	var outs []*testutil.SyncBuffer
	interrupted := ns + "/solo: releasing:"
	runs, err := cl.RunJobPods(ctx, systemNamespace, releaseJob, func(ctx context.Context, pod *corev1.Pod, c corev1.Container) int32 {
		out := &testutil.SyncBuffer{}
		outs = append(outs, out)
		if len(outs) == 1 {
			return runContainer(ctx, t, cl, bin, pod, c, out, interrupted)
		}
		return runContainer(ctx, t, cl, bin, pod, c, out, "")
	})
	for i, out := range outs {
		t.Logf("release, the hook's container, attempt %d, said:\n%s", i+1, out.String())
	}
	if err != nil {
		t.Fatalf("play the hook's Pods: %v", err)
	}
	var h result
	select {
	case h = <-done:
	case <-ctx.Done():
		t.Fatalf("helm uninstall did not return: %v", ctx.Err())
	}
	if h.err != nil {
		t.Fatalf("helm uninstall: %v\n%s", h.err, h.out)
	}
	if len(runs) != 2 || runs[0].ExitCode == 0 || runs[1].ExitCode != 0 {
		t.Fatalf("the hook Job ran %+v; want two Pods: the interrupted one failed, the retry succeeded", runs)
	}
	first, retry := runs[0], runs[1]
	t.Logf("helm uninstall took %s; its pre-delete hook started %s after helm; attempt 1 (Pod %s) was interrupted after %s (exit code %d), "+
		"the Job controller retried %s later, attempt 2 (Pod %s) took %s (exit code 0)",
		h.took.Round(100*time.Millisecond), first.Started.Sub(start).Round(100*time.Millisecond), first.Pod, first.Took.Round(100*time.Millisecond),
		first.ExitCode, retry.Started.Sub(first.Started.Add(first.Took)).Round(100*time.Millisecond), retry.Pod, retry.Took.Round(100*time.Millisecond))
	for i, want := range map[int][]string{
		0: {ns + "/solo: could not release: released, but it was interrupted before its rollout finished"},
		1: {ns + "/solo: released already", ns + "/duo: election mode, left as it is", "0 could not be released"},
	} {
		for _, w := range want {
			if !strings.Contains(outs[i].String(), w) {
				t.Errorf("attempt %d of the hook: its output lacks %q", i+1, w)
			}
		}
	}
	if _, err := cl.Clientset.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, "singleton-webhook", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("after helm uninstall the webhook configuration is still there (err %v)", err)
	}
	if _, err := cl.Clientset.BatchV1().Jobs(systemNamespace).Get(ctx, releaseJob, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the hook Job outlived its success (hook-succeeded): err %v", err)
	}
	serve.stop()
	checkReleased(ctx, t, cl, ns, before, "helm uninstall")
}

// checkKustomizeUninstall applies the rendered kustomize install (what
// `make deploy` applies), makes singletons live, checks release's refusals
// (no rights; a webhook registered but gone), then runs the documented
// removal (docs/install.md: release -A, delete the configuration, delete
// -k manifests/) and checks that a deleted Pod of each singleton is
// replaced, and that release, run again with the webhook gone, finds
// nothing left to do.
func checkKustomizeUninstall(ctx context.Context, t *testing.T, cl *cluster.Cluster, bin string) {
	// The Lease the chart's webhook held stays held for its duration after
	// the process stopped; a later install would wait that long for its
	// controllers. An install done later finds it expired.
	err := cl.Clientset.CoordinationV1().Leases(systemNamespace).Delete(ctx, "singleton-webhook.singleton.dev", metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	in := renderInstall(t)
	if out, err := kubectl(ctx, cl.Kubeconfig, "apply", "--server-side", "-f", in.file); err != nil {
		t.Fatalf("apply the install: %v\n%s", err, out)
	}
	waitRolledOut(ctx, t, cl, 2)
	serve := serveAsPod(ctx, t, cl, bin)
	defer serve.stop()
	const ns = "apps-kustomize"
	applySingletons(ctx, t, cl, ns)
	before := replicaSetCount(ctx, t, cl, ns)

	checkReleaseRefused(ctx, t, cl, bin, ns, serve)

	// The documented removal, as `make undeploy` runs it.
	start := time.Now()
	out, code := releaseAs(ctx, t, bin, cl.Kubeconfig)
	t.Logf("release -A took %s, exit code %d:\n%s", time.Since(start).Round(100*time.Millisecond), code, out)
	if code != 0 || !strings.Contains(out, ns+"/solo: released: rolled out in") || !strings.Contains(out, ns+"/duo: election mode, left as it is") {
		t.Fatalf("release -A: exit code %d; want 0, %s/solo released and %s/duo left as it is", code, ns, ns)
	}
	if out, err := kubectl(ctx, cl.Kubeconfig, "delete", "mutatingwebhookconfiguration", "singleton-webhook"); err != nil {
		t.Fatalf("delete the webhook configuration: %v\n%s", err, out)
	}
	stopped := playTermination(ctx, t, cl, serve)
	start = time.Now()
	root, err := testenv.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	// The configuration is gone already: without --ignore-not-found kubectl
	// would exit 1 on it, after deleting the rest.
	if out, err := kubectl(ctx, cl.Kubeconfig, "delete", "--ignore-not-found", "-k", filepath.Join(root, "manifests")); err != nil {
		t.Fatalf("delete the install: %v\n%s", err, out)
	}
	stopped()
	t.Logf("kubectl delete -k manifests/ took %s", time.Since(start).Round(100*time.Millisecond))
	if _, err := cl.Clientset.CoreV1().Namespaces().Get(ctx, systemNamespace, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("namespace %s outlived kubectl delete -k manifests/ (err %v)", systemNamespace, err)
	}
	checkReleased(ctx, t, cl, ns, before, "the kustomize uninstall")

	// With the webhook gone, release is still safe to run: nothing left.
	out, code = releaseAs(ctx, t, bin, cl.Kubeconfig)
	if code != 0 || !strings.Contains(out, ns+"/solo: released already") {
		t.Errorf("release -A with the webhook gone: exit code %d; want 0 and %s/solo released already:\n%s", code, ns, out)
	}
}

// checkReleaseRefused runs release -A where it cannot release: as a user
// who may only read, and with the webhook configuration pointing at a
// webhook that is gone (half uninstalled). Each time it must name the
// replicas-mode Deployment and why, exit 1, and change nothing.
func checkReleaseRefused(ctx context.Context, t *testing.T, cl *cluster.Cluster, bin, ns string, serve *localServe) {
	t.Helper()
	solo, err := cl.Clientset.AppsV1().Deployments(ns).Get(ctx, "solo", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rs := replicaSetCount(ctx, t, cl, ns)
	unchanged := func(what string) {
		t.Helper()
		d, err := cl.Clientset.AppsV1().Deployments(ns).Get(ctx, "solo", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if d.ResourceVersion != solo.ResourceVersion || !patches.HasGate(d) {
			t.Errorf("%s: %s/solo changed (resourceVersion %s, was %s; gate %t)", what, ns, d.ResourceVersion, solo.ResourceVersion, patches.HasGate(d))
		}
		if got := replicaSetCount(ctx, t, cl, ns); got != rs {
			t.Errorf("%s: %d ReplicaSets, were %d", what, got, rs)
		}
	}

	viewer := viewerKubeconfig(ctx, t, cl)
	out, code := releaseAs(ctx, t, bin, viewer)
	t.Logf("release -A by a user who may only read: exit code %d:\n%s", code, out)
	if code != 1 || !strings.Contains(out, ns+"/solo: could not release: forbidden:") || !strings.Contains(out, "1 could not be released") {
		t.Errorf("release -A without the rights: exit code %d; want 1 and one line saying %s/solo could not be released, forbidden", code, ns)
	}
	unchanged("release without the rights")

	serve.pointConfiguration(ctx, t, cl, "https://127.0.0.1:1")
	out, code = releaseAs(ctx, t, bin, cl.Kubeconfig)
	t.Logf("release -A with the webhook configured but not answering: exit code %d:\n%s", code, out)
	if code != 1 || !strings.Contains(out, ns+"/solo: could not release: a webhook is registered but does not answer (half uninstalled?)") ||
		!strings.Contains(out, "1 could not be released") {
		t.Errorf("release -A half uninstalled: exit code %d; want 1 and one line saying %s/solo could not be released, the webhook does not answer", code, ns)
	}
	unchanged("release with the webhook not answering")
	serve.pointConfiguration(ctx, t, cl, serve.url)
	if err := testenv.WaitForMutation(ctx, cl.Config); err != nil {
		t.Fatal(err)
	}
}

// checkReleased checks what an uninstall left: no gate on the replicas-mode
// singleton, one rollout (its own), and a deleted Pod of each singleton
// replaced by a Running one within the grace period + 5 s.
func checkReleased(ctx context.Context, t *testing.T, cl *cluster.Cluster, ns string, before int, how string) {
	t.Helper()
	after := replicaSetCount(ctx, t, cl, ns)
	t.Logf("rollouts caused by %s: %d (ReplicaSets of %s: %d before, %d after)", how, after-before, ns, before, after)
	if after-before != 1 {
		t.Errorf("%s caused %d rollouts, want 1 (the replicas-mode singleton's)", how, after-before)
	}
	d, err := cl.Clientset.AppsV1().Deployments(ns).Get(ctx, "solo", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if patches.HasGate(d) || !patches.Released(d.Annotations) {
		t.Errorf("%s/solo after %s: gate %t, released %t; want no gate, released", ns, how, patches.HasGate(d), patches.Released(d.Annotations))
	}
	for _, app := range []string{"solo", "duo"} {
		old := servingPods(ctx, t, cl, ns, app)
		if len(old) == 0 {
			t.Fatalf("%s/%s has no Running Pod to delete", ns, app)
		}
		del := time.Now()
		if out, err := kubectl(ctx, cl.Kubeconfig, "-n", ns, "delete", "pod", old[0].Name, "--wait=false"); err != nil {
			t.Fatalf("kubectl delete pod: %v\n%s", err, out)
		}
		limit := (uninstallGrace + 5) * time.Second
		pollUntil(ctx, t, "a Running replacement of "+old[0].Name, func(ctx context.Context) (bool, string) {
			if time.Since(del) > limit {
				t.Fatalf("after %s no Running replacement of %s/%s within the grace period + 5 s (%s)", how, ns, old[0].Name, limit)
			}
			for _, p := range servingPods(ctx, t, cl, ns, app) {
				if p.UID != old[0].UID && !p.CreationTimestamp.Before(&metav1.Time{Time: del.Add(-time.Second)}) {
					return true, ""
				}
			}
			return false, "no new Running Pod yet"
		})
		t.Logf("after %s: %s/%s deleted, a Running replacement %s later", how, ns, old[0].Name, time.Since(del).Round(100*time.Millisecond))
	}
}

// applySingletons applies, with kubectl, a replicas-mode singleton solo
// (3 replicas asked) and an election-mode singleton duo (2 replicas), and
// waits until they are live: solo's one Pod and duo's two Running.
func applySingletons(ctx context.Context, t *testing.T, cl *cluster.Cluster, ns string) {
	t.Helper()
	f := testutil.SingletonsManifest(t, ns, uninstallGrace, true)
	if out, err := kubectl(ctx, cl.Kubeconfig, "apply", "-f", f); err != nil {
		t.Fatalf("apply the singletons: %v\n%s", err, out)
	}
	start := time.Now()
	pollUntil(ctx, t, "the singletons to be live", func(ctx context.Context) (bool, string) {
		solo, duo := servingPods(ctx, t, cl, ns, "solo"), servingPods(ctx, t, cl, ns, "duo")
		return len(solo) == 1 && len(duo) == 2, fmt.Sprintf("solo %d Running Pods, duo %d", len(solo), len(duo))
	})
	d, err := cl.Clientset.AppsV1().Deployments(ns).Get(ctx, "solo", metav1.GetOptions{})
	if err != nil || !patches.HasGate(d) {
		t.Fatalf("%s/solo is no replicas-mode singleton (gate in its template: %t, err %v)", ns, d != nil && patches.HasGate(d), err)
	}
	t.Logf("singletons live in %s %s after the apply", ns, time.Since(start).Round(100*time.Millisecond))
}

// servingPods lists the Pods of app that are Running, Ready and not being
// deleted.
func servingPods(ctx context.Context, t *testing.T, cl *cluster.Cluster, ns, app string) []corev1.Pod {
	t.Helper()
	l, err := cl.Clientset.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=" + app})
	if err != nil {
		t.Fatal(err)
	}
	var ps []corev1.Pod
	for _, p := range l.Items {
		if p.DeletionTimestamp != nil || p.Status.Phase != corev1.PodRunning {
			continue
		}
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
				ps = append(ps, p)
			}
		}
	}
	return ps
}

// replicaSetCount counts the ReplicaSets of a namespace: one more per
// rollout.
func replicaSetCount(ctx context.Context, t *testing.T, cl *cluster.Cluster, ns string) int {
	t.Helper()
	l, err := cl.Clientset.AppsV1().ReplicaSets(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return len(l.Items)
}

// localServe is `singleton-webhook serve` playing a Pod of the installed
// webhook Deployment (see the comment at the top of this file).
type localServe struct {
	pod   *corev1.Pod
	url   string
	ca    []byte
	paths map[string]string // the path of each webhook, by name
	cmd   *exec.Cmd
	done  chan struct{}
	logs  *testutil.SyncBuffer
}

// serveAsPod runs serve as a Running Pod of the installed Deployment
// would, points the webhook configuration at it and waits until the API
// server mutates through it.
func serveAsPod(ctx context.Context, t *testing.T, cl *cluster.Cluster, bin string) *localServe {
	t.Helper()
	d := waitRolledOut(ctx, t, cl, 2)
	pods, err := cl.Clientset.CoreV1().Pods(systemNamespace).List(ctx, metav1.ListOptions{LabelSelector: metav1.FormatLabelSelector(d.Spec.Selector)})
	if err != nil {
		t.Fatal(err)
	}
	var pod *corev1.Pod
	for i := range pods.Items {
		if p := &pods.Items[i]; p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning {
			pod = p
		}
	}
	if pod == nil {
		t.Fatal("no Running Pod of the webhook's Deployment")
	}
	c := pod.Spec.Containers[0]
	dir := t.TempDir()
	port := testutil.FreePort(t)
	probe := testutil.FreeAddr(t)
	args := append(expandArgs(c),
		"--kubeconfig="+podKubeconfig(ctx, t, cl, pod),
		"--webhook-cert-path=", "--self-signed", "--self-signed-ca-out="+filepath.Join(dir, "ca.crt"),
		fmt.Sprintf("--webhook-port=%d", port),
		"--health-probe-bind-address="+probe,
		"--metrics-bind-address="+testutil.FreeAddr(t),
		"--leader-election-namespace="+pod.Namespace,
	)
	s := &localServe{pod: pod, url: fmt.Sprintf("https://127.0.0.1:%d", port), paths: map[string]string{},
		done: make(chan struct{}), logs: &testutil.SyncBuffer{}}
	s.cmd = exec.Command(bin, args...)
	// The namespace a Pod reads from its ServiceAccount's mount.
	s.cmd.Env = append(os.Environ(), "POD_NAMESPACE="+pod.Namespace, "KUBECONFIG=")
	s.cmd.Stdout, s.cmd.Stderr = s.logs, s.logs
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.cmd.Wait(); close(s.done) }()
	t.Cleanup(func() {
		s.stop()
		if t.Failed() {
			t.Logf("serve (as Pod %s) said:\n%s", pod.Name, s.logs.String())
		}
	})
	waitReady(ctx, t, "http://"+probe+"/readyz", s.logs)
	if s.ca, err = os.ReadFile(filepath.Join(dir, "ca.crt")); err != nil {
		t.Fatal(err)
	}
	s.pointConfiguration(ctx, t, cl, s.url)
	if err := testenv.WaitForMutation(ctx, cl.Config); err != nil {
		t.Fatalf("the API server does not mutate through serve: %v\n%s", err, s.logs.String())
	}
	return s
}

// pointConfiguration points every webhook of the installed configuration
// at base (its paths kept) with the local CA, and takes cainjector's
// annotation off so it does not put the Service's CA back.
func (s *localServe) pointConfiguration(ctx context.Context, t *testing.T, cl *cluster.Cluster, base string) {
	t.Helper()
	api := cl.Clientset.AdmissionregistrationV1().MutatingWebhookConfigurations()
	cfg, err := api.Get(ctx, "singleton-webhook", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	delete(cfg.Annotations, "cert-manager.io/inject-ca-from")
	for i := range cfg.Webhooks {
		wh := &cfg.Webhooks[i]
		cc := &wh.ClientConfig
		if cc.Service != nil && cc.Service.Path != nil {
			s.paths[wh.Name] = *cc.Service.Path
		}
		path, ok := s.paths[wh.Name]
		if !ok {
			t.Fatalf("webhook %s: no service path to keep", wh.Name)
		}
		u := base + path
		cc.Service, cc.URL, cc.CABundle = nil, &u, s.ca
	}
	if _, err := api.Update(ctx, cfg, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("point the webhook configuration at %s: %v", base, err)
	}
}

// stop stops serve (SIGTERM, as the kubelet does) and waits for it.
func (s *localServe) stop() {
	if s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

// playTermination plays the kubelet for the webhook's Pods while they are
// deleted: once the Pod serve plays is terminating, serve gets SIGTERM;
// every terminating Pod in the release namespace is then marked stopped
// (its containers exited). The returned func ends it.
func playTermination(ctx context.Context, t *testing.T, cl *cluster.Cluster, serve *localServe) func() {
	ctx, cancel := context.WithCancel(ctx)
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		for ctx.Err() == nil {
			if l, err := cl.Clientset.CoreV1().Pods(systemNamespace).List(ctx, metav1.ListOptions{}); err == nil {
				for _, p := range l.Items {
					if p.DeletionTimestamp == nil {
						continue
					}
					if p.UID == serve.pod.UID {
						serve.stop()
					}
					_ = cl.MarkStopped(ctx, p.Namespace, p.Name)
				}
			}
			select {
			case <-ctx.Done():
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()
	return func() { cancel(); <-ended }
}

// runContainer runs the container of a Pod as its node would: the image's
// entrypoint (the product binary) with the container's args, its env, and
// the credentials of the Pod's ServiceAccount bound to the Pod. It returns
// the exit code, with the output in out. With interruptAt, the container
// gets SIGTERM once its output holds that text, as when its Pod is evicted.
func runContainer(ctx context.Context, t *testing.T, cl *cluster.Cluster, bin string, pod *corev1.Pod, c corev1.Container, out *testutil.SyncBuffer, interruptAt string) int32 {
	args := expandArgs(c)
	switch {
	case len(c.Command) == 1 && c.Command[0] == entrypoint:
	case len(c.Command) > 0:
		fmt.Fprintf(out, "the test runs only the image's entrypoint %s; the container's command is %q\n", entrypoint, c.Command)
		return 127
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+podKubeconfig(ctx, t, cl, pod))
	for _, e := range c.Env {
		cmd.Env = append(cmd.Env, e.Name+"="+e.Value)
	}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(out, "run %s: %v\n", bin, err)
		return 128
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	var err error
	for waiting := true; waiting; {
		select {
		case err = <-exited:
			waiting = false
		case <-time.After(20 * time.Millisecond):
			if interruptAt != "" && strings.Contains(out.String(), interruptAt) {
				_ = cmd.Process.Signal(syscall.SIGTERM)
				interruptAt = ""
			}
		}
	}
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &exit):
		return int32(exit.ExitCode())
	default:
		fmt.Fprintf(out, "run %s: %v\n", bin, err)
		return 128
	}
}

// podKubeconfig writes a kubeconfig holding a token of the Pod's
// ServiceAccount bound to the Pod (TokenRequest), the credentials the
// kubelet would mount into it.
func podKubeconfig(ctx context.Context, t *testing.T, cl *cluster.Cluster, pod *corev1.Pod) string {
	t.Helper()
	tr := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
		BoundObjectRef: &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID}}}
	got, err := cl.Clientset.CoreV1().ServiceAccounts(pod.Namespace).CreateToken(ctx, pod.Spec.ServiceAccountName, tr, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("token of ServiceAccount %s for Pod %s: %v", pod.Spec.ServiceAccountName, pod.Name, err)
	}
	return tokenKubeconfig(t, cl, got.Status.Token)
}

// viewerKubeconfig is a user who may read everything and change nothing:
// a ServiceAccount bound to the ClusterRole view.
func viewerKubeconfig(ctx context.Context, t *testing.T, cl *cluster.Cluster) string {
	t.Helper()
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "viewer", Namespace: metav1.NamespaceDefault}}
	if _, err := cl.Clientset.CoreV1().ServiceAccounts(sa.Namespace).Create(ctx, sa, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	crb := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "viewer"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "view"},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: sa.Name, Namespace: sa.Namespace}}}
	if _, err := cl.Clientset.RbacV1().ClusterRoleBindings().Create(ctx, crb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	got, err := cl.Clientset.CoreV1().ServiceAccounts(sa.Namespace).CreateToken(ctx, sa.Name, &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return tokenKubeconfig(t, cl, got.Status.Token)
}

// tokenKubeconfig writes a kubeconfig for the cluster with a bearer token.
func tokenKubeconfig(t *testing.T, cl *cluster.Cluster, token string) string {
	t.Helper()
	kc := clientcmdapi.NewConfig()
	kc.Clusters["c"] = &clientcmdapi.Cluster{Server: cl.Config.Host, CertificateAuthorityData: cl.Config.CAData}
	kc.AuthInfos["c"] = &clientcmdapi.AuthInfo{Token: token}
	kc.Contexts["c"] = &clientcmdapi.Context{Cluster: "c", AuthInfo: "c"}
	kc.CurrentContext = "c"
	f, err := os.CreateTemp(t.TempDir(), "kubeconfig-")
	if err != nil {
		t.Fatal(err)
	}
	_ = f.Close()
	if err := clientcmd.WriteToFile(*kc, f.Name()); err != nil {
		t.Fatal(err)
	}
	return f.Name()
}

// releaseAs runs `singleton-webhook release -A` as the user of kubeconfig
// and returns its output and exit code.
func releaseAs(ctx context.Context, t *testing.T, bin, kubeconfig string) (string, int) {
	t.Helper()
	cmd := exec.CommandContext(ctx, bin, "release", "-A", "--timeout=1m")
	cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return string(out), 0
	case errors.As(err, &exit):
		return string(out), exit.ExitCode()
	}
	t.Fatalf("run release: %v", err)
	return "", 0
}

// kubectl runs the kubectl of bin/k8s against kubeconfig.
func kubectl(ctx context.Context, kubeconfig string, args ...string) (string, error) {
	root, err := testenv.ModuleRoot()
	if err != nil {
		return "", err
	}
	bin, err := testenv.KubectlPath(root)
	if err != nil {
		return "", err
	}
	out, err := exec.CommandContext(ctx, bin, append([]string{"--kubeconfig", kubeconfig}, args...)...).CombinedOutput()
	return string(out), err
}
