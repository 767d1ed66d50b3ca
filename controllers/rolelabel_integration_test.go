//go:build integration

package controllers_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/singleton-webhook/singleton-webhook/internal/sidecar"
	"github.com/singleton-webhook/singleton-webhook/patches"
)

// TestRoleLabelIntegration plays the sidecars' part by writing the Lease as
// they would, and checks the controller labels the Pods from it: the
// holder leads, the others stand by, a holder that stops renewing (cut off)
// turns standby once its Lease expires, and a takeover moves the label.
func TestRoleLabelIntegration(t *testing.T) {
	env := startElection(t, patches.Policy{})
	ns := newNamespace(t, env)
	if err := env.Client.Create(ctxFor(t), electionDeployment(ns, "api", "", 2, nil)); err != nil {
		t.Fatalf("create deployment: %v", err)
	}
	for _, name := range []string{"api-a", "api-b"} {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns,
			Labels: map[string]string{"app": "api", patches.LabelDeployment: "api"}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.k8s.io/pause:3.10"}}}}
		if err := env.Client.Create(ctxFor(t), p); err != nil {
			t.Fatalf("create pod: %v", err)
		}
	}
	const lease = 2 * time.Second
	hold := func(holder string) time.Time {
		t.Helper()
		var at time.Time
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			l, err := env.Clientset.CoordinationV1().Leases(ns).Get(ctxFor(t), "api", metav1.GetOptions{})
			if err != nil {
				return err
			}
			secs := int32(lease / time.Second)
			at = time.Now()
			l.Spec = coordinationv1.LeaseSpec{HolderIdentity: &holder, LeaseDurationSeconds: &secs,
				RenewTime: &metav1.MicroTime{Time: at}, AcquireTime: &metav1.MicroTime{Time: at}}
			_, err = env.Clientset.CoordinationV1().Leases(ns).Update(ctxFor(t), l, metav1.UpdateOptions{})
			return err
		})
		if err != nil {
			t.Fatalf("write the Lease: %v", err)
		}
		return at
	}
	roles := func(want map[string]string) func() (bool, string) {
		return func() (bool, string) {
			got := map[string]string{}
			for name := range want {
				p := &corev1.Pod{}
				if err := env.Client.Get(ctxFor(t), client.ObjectKey{Namespace: ns, Name: name}, p); err != nil {
					return false, err.Error()
				}
				got[name] = p.Labels[sidecar.RoleLabel]
			}
			for name, role := range want {
				if got[name] != role {
					return false, fmt.Sprintf("roles %v, want %v", got, want)
				}
			}
			return true, ""
		}
	}
	waitObject(t, env, ns, "api", &coordinationv1.Lease{})
	eventually(t, "both Pods stand by before anyone holds the Lease", roles(map[string]string{"api-a": "standby", "api-b": "standby"}))

	renewed := hold("api-a")
	eventually(t, "the holder leads", roles(map[string]string{"api-a": "leader", "api-b": "standby"}))

	// api-a stops renewing, as a leader cut off from the API server does.
	eventually(t, "the silent leader stands by once its Lease expires", roles(map[string]string{"api-a": "standby", "api-b": "standby"}))
	if late := time.Since(renewed); late < lease {
		t.Errorf("the leader turned standby %s after its last renewal, before its lease of %s ended", late, lease)
	} else {
		t.Logf("a leader that stopped renewing lost its label %s after its last renewal (lease %s)", late.Round(time.Millisecond), lease)
	}

	hold("api-b")
	eventually(t, "the label follows a takeover", roles(map[string]string{"api-a": "standby", "api-b": "leader"}))
}

// TestRoleLabelLongNameIntegration: the Pods of a Deployment whose name
// exceeds 63 characters carry a shortened singleton.dev/deployment value;
// the controller still finds them, from a Pod's event and from the Lease.
func TestRoleLabelLongNameIntegration(t *testing.T) {
	env := startElection(t, patches.Policy{})
	ns := newNamespace(t, env)
	name := strings.Repeat("long-singleton-", 5) + "app" // 78 characters
	d := electionDeployment(ns, "long", "", 2, nil)      // labels app=long: a label value cannot hold the name
	d.Name = name
	if err := env.Client.Create(ctxFor(t), d); err != nil {
		t.Fatalf("create deployment: %v", err)
	}
	waitObject(t, env, ns, name, &coordinationv1.Lease{})
	holder := name + "-a"
	for _, pod := range []string{holder, name + "-b"} {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: pod, Namespace: ns,
			Labels: map[string]string{patches.LabelDeployment: patches.DeploymentLabelValue(name)}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.k8s.io/pause:3.10"}}}}
		if err := env.Client.Create(ctxFor(t), p); err != nil {
			t.Fatalf("create pod: %v", err)
		}
	}
	role := func(pod, want string) func() (bool, string) {
		return func() (bool, string) {
			p := &corev1.Pod{}
			if err := env.Client.Get(ctxFor(t), client.ObjectKey{Namespace: ns, Name: pod}, p); err != nil {
				return false, err.Error()
			}
			return p.Labels[sidecar.RoleLabel] == want, fmt.Sprintf("pod %s role %q, want %q", pod, p.Labels[sidecar.RoleLabel], want)
		}
	}
	eventually(t, "a new Pod stands by", role(name+"-b", sidecar.RoleStandby))
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		l, err := env.Clientset.CoordinationV1().Leases(ns).Get(ctxFor(t), name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		secs, now := int32(30), metav1.NowMicro()
		l.Spec = coordinationv1.LeaseSpec{HolderIdentity: &holder, LeaseDurationSeconds: &secs, RenewTime: &now, AcquireTime: &now}
		_, err = env.Clientset.CoordinationV1().Leases(ns).Update(ctxFor(t), l, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatalf("write the Lease: %v", err)
	}
	eventually(t, "the holder leads", role(holder, sidecar.RoleLeader))
	eventually(t, "the other stands by", role(name+"-b", sidecar.RoleStandby))
}
