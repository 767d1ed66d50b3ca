//go:build integration

package ops_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	"github.com/singleton-webhook/singleton-webhook/internal/app"
	"github.com/singleton-webhook/singleton-webhook/internal/ops"
	"github.com/singleton-webhook/singleton-webhook/internal/testenv"
	"github.com/singleton-webhook/singleton-webhook/patches"
)

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// singleton is a Deployment annotated singleton in mode, as written by
// its user (the webhook, if installed, mutates it).
func singleton(ns, name string, mode patches.Mode) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name,
			Annotations: map[string]string{patches.AnnotationSingleton: "true", patches.AnnotationMode: string(mode)}},
		Spec: appsv1.DeploymentSpec{Replicas: ptr.To(int32(2)), Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.k8s.io/pause:3.10"}}}}},
	}
}

func createNamespace(t *testing.T, cs kubernetes.Interface, name string, labels map[string]string) {
	t.Helper()
	_, err := cs.CoreV1().Namespaces().Create(ctxFor(t, 30*time.Second), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
}

// countingConfig counts the requests made through a copy of cfg.
func countingConfig(cfg *rest.Config, n *atomic.Int64) *rest.Config {
	c := rest.CopyConfig(cfg)
	c.QPS, c.Burst = 1000, 1000
	c.WrapTransport = func(rt http.RoundTripper) http.RoundTripper {
		return roundTripper(func(r *http.Request) (*http.Response, error) {
			n.Add(1)
			return rt.RoundTrip(r)
		})
	}
	return c
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestStatusOf1000Singletons reads 1,000 singletons (each with a Pod, the
// election ones with a Lease) in one list per kind, in under 2 s.
func TestStatusOf1000Singletons(t *testing.T) {
	env := testenv.Start(t, testenv.Options{SkipWebhookConfiguration: true})
	const n, namespaces = 1000, 10
	ctx := ctxFor(t, 5*time.Minute)
	for i := range namespaces {
		createNamespace(t, env.Clientset, fmt.Sprintf("team-%d", i), nil)
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	sem := make(chan struct{}, 16)
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			errs <- createAdmitted(ctx, env.Clientset, fmt.Sprintf("team-%d", i%namespaces), fmt.Sprintf("app-%d", i), i%2 == 0)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	var requests atomic.Int64
	cs := kubernetes.NewForConfigOrDie(countingConfig(env.Config, &requests))
	start := time.Now()
	snap, err := ops.Read(ctx, cs, ops.Scope{AllNamespaces: true})
	if err != nil {
		t.Fatal(err)
	}
	list := ops.Status(snap)
	var b bytes.Buffer
	if err := ops.WriteStatus(&b, list, ops.OutputWide, true, snap.Now); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	t.Logf("status -A -o wide of %d singletons: %d API requests, %s", len(list.Items), requests.Load(), took)
	if len(list.Items) != n || list.Partial {
		t.Fatalf("%d singletons (partial %v), want %d", len(list.Items), list.Partial, n)
	}
	if requests.Load() != 3 {
		t.Errorf("%d API requests, want 3: one list per kind", requests.Load())
	}
	if took > 2*time.Second {
		t.Errorf("status took %s, want < 2s", took)
	}
	for _, s := range list.Items {
		if !s.Enforced || s.Active == nil {
			t.Fatalf("singleton %s/%s: %+v", s.Namespace, s.Name, s)
		}
	}
}

// createAdmitted creates a singleton as the webhook would have admitted
// it, its running Pod and, in election mode, its Lease held by that Pod.
func createAdmitted(ctx context.Context, cs kubernetes.Interface, ns, name string, election bool) error {
	mode := patches.ModeReplicas
	if election {
		mode = patches.ModeElection
	}
	d := singleton(ns, name, mode)
	if _, err := patches.Apply(d, patches.Policy{}); err != nil {
		return err
	}
	if _, err := cs.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
		return err
	}
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name + "-0", Labels: d.Spec.Template.Labels},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.k8s.io/pause:3.10"}}}}
	if _, err := cs.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{}); err != nil {
		return err
	}
	if !election {
		return nil
	}
	now := metav1.NewMicroTime(time.Now())
	_, err := cs.CoordinationV1().Leases(ns).Create(ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To(p.Name), LeaseDurationSeconds: ptr.To(int32(3600)), AcquireTime: &now, RenewTime: &now}}, metav1.CreateOptions{})
	return err
}

// TestStatusWithRightsInSomeNamespaces runs status -A as a user who may
// read only namespace "mine": the rows of "mine", and one line for each
// namespace it could not read; exit status 1.
func TestStatusWithRightsInSomeNamespaces(t *testing.T) {
	env := testenv.Start(t, testenv.Options{SkipWebhookConfiguration: true})
	ctx := ctxFor(t, time.Minute)
	for _, ns := range []string{"mine", "theirs"} {
		createNamespace(t, env.Clientset, ns, nil)
		if err := createAdmitted(ctx, env.Clientset, ns, "app", false); err != nil {
			t.Fatal(err)
		}
	}
	rbac := env.Clientset.RbacV1()
	read := []rbacv1.PolicyRule{{APIGroups: []string{"", "apps", "coordination.k8s.io"}, Resources: []string{"deployments", "pods", "leases"}, Verbs: []string{"get", "list"}}}
	user := []rbacv1.Subject{{Kind: rbacv1.UserKind, Name: "viewer"}}
	mustCreate(t, func() error {
		_, err := rbac.Roles("mine").Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "read"}, Rules: read}, metav1.CreateOptions{})
		return err
	}, func() error {
		_, err := rbac.RoleBindings("mine").Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "read"}, Subjects: user,
			RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "read"}}, metav1.CreateOptions{})
		return err
	}, func() error {
		_, err := rbac.ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "viewer-namespaces"}, Subjects: user,
			RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "view-namespaces"}}, metav1.CreateOptions{})
		return err
	}, func() error {
		_, err := rbac.ClusterRoles().Create(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "view-namespaces"},
			Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"namespaces"}, Verbs: []string{"list"}}}}, metav1.CreateOptions{})
		return err
	})
	var stdout, stderr bytes.Buffer
	asViewer := func(c *rest.Config) { c.Impersonate = rest.ImpersonationConfig{UserName: "viewer"} }
	err := app.Status(ctx, []string{"--kubeconfig", env.Kubeconfig, "-A", "-o", "json"}, &stdout, &stderr, asViewer)
	t.Logf("status -A as viewer: %v\n%s%s", err, stdout.String(), stderr.String())
	if err == nil || err.Error() != app.ErrReported.Error() {
		t.Errorf("error %v, want exit status 1 (reported)", err)
	}
	var list ops.StatusList
	if err := json.Unmarshal(stdout.Bytes(), &list); err != nil {
		t.Fatal(err)
	}
	if !list.Partial || len(list.Items) != 1 || list.Items[0].Namespace != "mine" {
		t.Errorf("want the singleton of namespace mine, marked partial: %+v", list)
	}
	for _, want := range []string{"partial: cannot list deployments in namespace theirs: forbidden", "partial: cannot list deployments in namespace default: forbidden"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr lacks %q", want)
		}
	}
	if strings.Contains(stderr.String(), "goroutine") || strings.Count(stdout.String(), "\n") == 0 {
		t.Error("a stack trace, or no output")
	}
}

func mustCreate(t *testing.T, fns ...func() error) {
	t.Helper()
	for _, f := range fns {
		if err := f(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestStatusCommandOnARealAPIServer runs `status` on singletons the webhook
// admitted (and one it did not), with Pods and a Lease as the controllers
// and the sidecar leave them.
func TestStatusCommandOnARealAPIServer(t *testing.T) {
	env := testenv.Start(t, testenv.Options{})
	env.StartWebhook(t, testenv.WebhookOptions{})
	ctx := ctxFor(t, 2*time.Minute)
	createNamespace(t, env.Clientset, "shop", nil)
	apps, pods := env.Clientset.AppsV1().Deployments("shop"), env.Clientset.CoreV1().Pods("shop")
	pod := func(name string, gated bool) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{patches.LabelDeployment: strings.Split(name, "-")[0]}},
			Spec: corev1.PodSpec{NodeName: "node-1", Containers: []corev1.Container{{Name: "app", Image: "registry.k8s.io/pause:3.10"}}}}
		if gated {
			p.Spec.NodeName = ""
			p.Spec.SchedulingGates = []corev1.PodSchedulingGate{{Name: patches.GateOneAtATime}}
		}
		return p
	}
	now := metav1.NewMicroTime(time.Now())
	mustCreate(t, func() error {
		_, err := apps.Create(ctx, singleton("shop", "cart", patches.ModeReplicas), metav1.CreateOptions{})
		return err
	}, func() error {
		_, err := apps.Create(ctx, singleton("shop", "billing", patches.ModeElection), metav1.CreateOptions{})
		return err
	}, func() error { _, err := pods.Create(ctx, pod("cart-1", false), metav1.CreateOptions{}); return err },
		func() error { _, err := pods.Create(ctx, pod("cart-2", true), metav1.CreateOptions{}); return err },
		func() error { _, err := pods.Create(ctx, pod("billing-1", false), metav1.CreateOptions{}); return err },
		func() error { _, err := pods.Create(ctx, pod("billing-2", false), metav1.CreateOptions{}); return err },
		func() error {
			// The election controller makes the Lease; the sidecar of
			// billing-1 would take it.
			leases := env.Clientset.CoordinationV1().Leases("shop")
			return wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
				l, err := leases.Get(ctx, "billing", metav1.GetOptions{})
				if err != nil {
					return false, nil
				}
				l.Spec = coordinationv1.LeaseSpec{HolderIdentity: ptr.To("billing-1"), LeaseDurationSeconds: ptr.To(int32(15)), AcquireTime: &now, RenewTime: &now}
				_, err = leases.Update(ctx, l, metav1.UpdateOptions{})
				return err == nil, nil
			})
		})
	var stdout, stderr bytes.Buffer
	for _, args := range [][]string{{"-n", "shop"}, {"-A", "-o", "wide"}} {
		stdout.Reset()
		if err := app.Status(ctx, append([]string{"--kubeconfig", env.Kubeconfig}, args...), &stdout, &stderr, nil); err != nil {
			t.Fatalf("status %v: %v\n%s", args, err, stderr.String())
		}
		t.Logf("status %s:\n%s", strings.Join(args, " "), stdout.String())
	}
	for _, want := range []string{"cart-2 for cart-1 (running) since", "billing-1 (epoch", "shop        cart      replicas   mutate        yes"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("status -A -o wide lacks %q", want)
		}
	}
}
