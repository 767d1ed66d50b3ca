//go:build integration

package controllers_test

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/singleton-webhook/singleton-webhook/patches"
)

func TestLeaderServiceIntegration(t *testing.T) {
	env := startElection(t, patches.Policy{})
	ns := newNamespace(t, env)
	d := electionDeployment(ns, "api", "", 3, map[string]string{patches.AnnotationLeaderService: "true"},
		corev1.ContainerPort{Name: "http", ContainerPort: 8080},
		corev1.ContainerPort{ContainerPort: 9090, Protocol: corev1.ProtocolTCP})
	if err := env.Client.Create(ctxFor(t), d); err != nil {
		t.Fatalf("create deployment: %v", err)
	}
	key := client.ObjectKey{Namespace: ns, Name: "api-leader"}

	t.Run("the leader Service selects the leader on the app's ports", func(t *testing.T) {
		s := &corev1.Service{}
		eventually(t, "leader Service", func() (bool, string) {
			err := env.Client.Get(ctxFor(t), key, s)
			return err == nil, "get: " + errString(err)
		})
		// The pod template's labels (the webhook adds singleton.dev/deployment) and the role.
		wantSelector := map[string]string{"app": "api", patches.LabelDeployment: "api", patches.RoleLabel: patches.RoleLeader}
		if !equality.Semantic.DeepEqual(s.Spec.Selector, wantSelector) {
			t.Errorf("selector %v, want %v", s.Spec.Selector, wantSelector)
		}
		wantPorts := []corev1.ServicePort{
			{Name: "http", Protocol: corev1.ProtocolTCP, Port: 8080, TargetPort: intstr.FromInt32(8080)},
			{Name: "tcp-9090", Protocol: corev1.ProtocolTCP, Port: 9090, TargetPort: intstr.FromInt32(9090)},
		}
		if !equality.Semantic.DeepEqual(s.Spec.Ports, wantPorts) {
			t.Errorf("ports %+v, want %+v", s.Spec.Ports, wantPorts)
		}
		if s.Spec.Type != corev1.ServiceTypeClusterIP || s.Spec.ClusterIP == "" || s.Spec.ClusterIP == corev1.ClusterIPNone {
			t.Errorf("type %s, clusterIP %q: want a ClusterIP Service", s.Spec.Type, s.Spec.ClusterIP)
		}
		owner := &appsv1.Deployment{}
		if err := env.Client.Get(ctxFor(t), client.ObjectKeyFromObject(d), owner); err != nil {
			t.Fatalf("get deployment: %v", err)
		}
		refs := s.OwnerReferences
		if len(refs) != 1 || refs[0].UID != owner.UID || refs[0].Kind != "Deployment" || refs[0].Controller == nil || !*refs[0].Controller {
			t.Errorf("owner references %+v, want the Deployment %s as controller", refs, owner.UID)
		}
	})

	t.Run("a changed selector is restored", func(t *testing.T) {
		s := &corev1.Service{}
		if err := env.Client.Get(ctxFor(t), key, s); err != nil {
			t.Fatalf("get service: %v", err)
		}
		s.Spec.Selector = map[string]string{"app": "api"}
		if err := env.Client.Update(ctxFor(t), s); err != nil {
			t.Fatalf("edit service: %v", err)
		}
		eventually(t, "selector restored", func() (bool, string) {
			err := env.Client.Get(ctxFor(t), key, s)
			return err == nil && s.Spec.Selector[patches.RoleLabel] == patches.RoleLeader,
				"selector " + errString(err)
		})
	})

	t.Run("removing the annotation removes the Service", func(t *testing.T) {
		updateDeployment(t, env, ns, "api", func(d *appsv1.Deployment) {
			delete(d.Annotations, patches.AnnotationLeaderService)
		})
		eventually(t, "leader Service removed", func() (bool, string) {
			err := env.Client.Get(ctxFor(t), key, &corev1.Service{})
			return apierrors.IsNotFound(err), "get: " + errString(err)
		})
	})
}
