//go:build integration

package cluster

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/singleton-webhook/singleton-webhook/controllers"
	"github.com/singleton-webhook/singleton-webhook/internal/sidecar"
	"github.com/singleton-webhook/singleton-webhook/patches"
)

// electLease is the lease duration of the election test: the tightest the
// validation accepts, with the longest renew deadline and retry period.
const electLease = 2 * time.Second

// TestElectionOnRealPods runs election mode on real Pods: the webhook
// injects the sidecar into a Deployment of three replicas, the real
// controllers run the Pods on simulated nodes, and for each Pod the test
// runs one `elect` process with the injected arguments and exactly the
// credentials that Pod would get (a TokenRequest for its ServiceAccount,
// bound to the Pod), each reaching the API server through its own proxy. It
// shows one leader; the <deployment>-leader Service's EndpointSlice holding
// only the leader's Pod IP and following a failover; a partitioned leader
// dropping out of it within the lease duration; and the ServiceAccount
// refused what the sidecar must not do.
func TestElectionOnRealPods(t *testing.T) {
	ns := newNamespace(t)
	ctx := ctxFor(t, 4*time.Minute)
	cs := cl.Clientset
	if _, err := cs.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "app"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	d := deployment(ns, "elected", 3, map[string]string{
		patches.AnnotationSingleton: "true", patches.AnnotationMode: "election", patches.AnnotationLeaderService: "true",
		patches.AnnotationLeaseDuration: "2s", patches.AnnotationRenewDeadline: "1710ms", patches.AnnotationRetryPeriod: "590ms",
	})
	d.Spec.Template.Spec.ServiceAccountName = "app"
	created, err := cs.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	injected := electorOf(t, created.Spec.Template.Spec)
	tr := track(t, cs, ns, "app=elected")
	tr.waitFor(time.Minute, "3 Ready Pods with IPs", func(ps []*corev1.Pod) bool {
		n := 0
		for _, p := range ps {
			if ready(p) && p.Status.PodIP != "" {
				n++
			}
		}
		return n == 3
	})
	waitUntil(t, time.Minute, "the elector's RoleBinding", func() bool {
		_, err := cs.RbacV1().RoleBindings(ns).Get(ctx, controllers.RoleBindingPrefix+"elected", metav1.GetOptions{})
		return err == nil
	})
	ips := map[string]string{}
	var cands []*electProcess
	for _, p := range tr.snapshot() {
		ips[p.Name] = p.Status.PodIP
		cands = append(cands, startElect(t, ns, p, injected.Args))
	}

	leader := waitOneLeader(t, cands, nil)
	waitSlice(t, ns, []string{ips[leader.pod]}, "the leader's Pod IP alone")

	// Failover: SIGTERM releases the Lease; the Service follows.
	start := time.Now()
	leader.stop(syscall.SIGTERM)
	next := waitOneLeader(t, cands, leader)
	took := time.Since(start)
	waitSlice(t, ns, []string{ips[next.pod]}, "the new leader's Pod IP alone")
	t.Logf("SIGTERM: %s → %s in %s; the leader Service followed %s after the signal",
		leader.pod, next.pod, took.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	leader.start(t)

	// Partition: the leader's proxy is cut; its Lease expires, and the
	// controller takes it out of the Service.
	cut := time.Now()
	next.proxy.Cut()
	dropped := waitSlice(t, ns, nil, "not the partitioned leader's Pod IP", ips[next.pod])
	out := dropped.Sub(cut)
	t.Logf("partition: the cut leader %s left the leader Service's EndpointSlice %s after the cut (lease %s)",
		next.pod, out.Round(time.Millisecond), electLease)
	// Its last renewal came before the cut: the label turns at that renewal
	// + the lease; the slack is the controllers' reaction (label, then
	// EndpointSlice) on a shared machine.
	if slack := time.Second; out > electLease+slack {
		t.Errorf("the partitioned leader stayed in the leader Service %s after the cut, want within the lease %s (+%s for the controllers)",
			out, electLease, slack)
	}
	third := waitOneLeader(t, cands, next)
	waitSlice(t, ns, []string{ips[third.pod]}, "the successor's Pod IP alone")
	next.proxy.Heal(t)

	refusals(t, ns, cands[0].pod)
}

// refusals checks, with a token of the app's ServiceAccount, that it may
// neither patch a Pod nor update a Lease other than its own.
func refusals(t *testing.T, ns, pod string) {
	t.Helper()
	ctx := ctxFor(t, time.Minute)
	other := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "someone-else", Namespace: ns}}
	if _, err := cl.Clientset.CoordinationV1().Leases(ns).Create(ctx, other, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	app := appClient(t, ns, nil)
	holder := "intruder"
	other.Spec.HolderIdentity = &holder
	_, errLease := app.CoordinationV1().Leases(ns).Update(ctx, other, metav1.UpdateOptions{})
	_, errPod := app.CoreV1().Pods(ns).Patch(ctx, pod, types.MergePatchType,
		[]byte(`{"metadata":{"labels":{"singleton.dev/role":"leader"}}}`), metav1.PatchOptions{})
	for what, err := range map[string]error{"update another Lease": errLease, "patch a Pod": errPod} {
		if !apierrors.IsForbidden(err) {
			t.Errorf("the app's ServiceAccount may %s: %v, want Forbidden", what, err)
		}
	}
}

// appClient is a client with a token of ServiceAccount app, bound to pod
// when given, as the kubelet would mount it.
func appClient(t *testing.T, ns string, pod *corev1.Pod) kubernetes.Interface {
	t.Helper()
	cfg := rest.AnonymousClientConfig(cl.Config)
	cfg.BearerToken = appToken(t, ns, pod)
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func appToken(t *testing.T, ns string, pod *corev1.Pod) string {
	t.Helper()
	tr := &authenticationv1.TokenRequest{}
	if pod != nil {
		tr.Spec.BoundObjectRef = &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID}
	}
	got, err := cl.Clientset.CoreV1().ServiceAccounts(ns).CreateToken(ctxFor(t, 30*time.Second), "app", tr, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("token request for ServiceAccount app: %v", err)
	}
	return got.Status.Token
}

func electorOf(t *testing.T, s corev1.PodSpec) corev1.Container {
	t.Helper()
	for _, c := range append(s.InitContainers, s.Containers...) {
		if c.Name == sidecar.ContainerName {
			return c
		}
	}
	t.Fatal("the Deployment came back without the elector sidecar")
	return corev1.Container{}
}

// waitOneLeader waits until exactly one candidate, other than except,
// answers isLeader, and the others do not.
func waitOneLeader(t *testing.T, cands []*electProcess, except *electProcess) *electProcess {
	t.Helper()
	var leader *electProcess
	waitUntil(t, 30*time.Second, "one leader", func() bool {
		leader = nil
		for _, c := range cands {
			if c.isLeader() {
				if leader != nil {
					return false
				}
				leader = c
			}
		}
		return leader != nil && leader != except
	})
	return leader
}

// waitSlice waits until the ready addresses of the leader Service's
// EndpointSlices are want (nil: any set without the addresses in absent),
// and returns when it saw that.
func waitSlice(t *testing.T, ns string, want []string, what string, absent ...string) time.Time {
	t.Helper()
	var got []string
	waitUntil(t, 30*time.Second, "leader Service: "+what, func() bool {
		list, err := cl.Clientset.DiscoveryV1().EndpointSlices(ns).List(ctxFor(t, 10*time.Second),
			metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=elected" + patches.LeaderServiceSuffix})
		if err != nil {
			return false
		}
		got = got[:0]
		for _, s := range list.Items {
			for _, e := range s.Endpoints {
				if e.Conditions.Ready != nil && *e.Conditions.Ready {
					got = append(got, e.Addresses...)
				}
			}
		}
		slices.Sort(got)
		if want != nil {
			return strings.Join(got, ",") == strings.Join(want, ",")
		}
		return !slices.ContainsFunc(got, func(a string) bool { return slices.Contains(absent, a) })
	})
	return time.Now()
}

func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// leaderStatus is the part of GET /leader the test reads.
type leaderStatus struct {
	IsLeader bool  `json:"isLeader"`
	Epoch    int64 `json:"epoch"`
}

var probe = &http.Client{Timeout: 500 * time.Millisecond}

func (e *electProcess) isLeader() bool {
	resp, err := probe.Get(fmt.Sprintf("http://127.0.0.1:%d/leader", e.port))
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	var st leaderStatus
	return json.NewDecoder(resp.Body).Decode(&st) == nil && st.IsLeader && st.Epoch > 0
}
