package controllers

import (
	"context"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/singleton-webhook/singleton-webhook/patches"
)

func TestServicePorts(t *testing.T) {
	sp := func(name string, proto corev1.Protocol, port int32) corev1.ServicePort {
		return corev1.ServicePort{Name: name, Protocol: proto, Port: port, TargetPort: intstr.FromInt32(port)}
	}
	tests := map[string]struct {
		containers []corev1.Container
		want       []corev1.ServicePort
	}{
		"no ports": {
			containers: []corev1.Container{{Name: "app"}},
			want:       nil,
		},
		"named ports keep their names": {
			containers: []corev1.Container{{Name: "app", Ports: []corev1.ContainerPort{
				{Name: "http", ContainerPort: 8080}, {Name: "grpc", ContainerPort: 9090, Protocol: corev1.ProtocolTCP}}}},
			want: []corev1.ServicePort{sp("http", "TCP", 8080), sp("grpc", "TCP", 9090)},
		},
		"unnamed ports are named after protocol and number": {
			containers: []corev1.Container{{Name: "app", Ports: []corev1.ContainerPort{
				{ContainerPort: 8080}, {ContainerPort: 5353, Protocol: corev1.ProtocolUDP}}}},
			want: []corev1.ServicePort{sp("tcp-8080", "TCP", 8080), sp("udp-5353", "UDP", 5353)},
		},
		"ports of every app container, each port once, the elector's left out": {
			containers: []corev1.Container{
				{Name: "app", Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}},
				{Name: "metrics", Ports: []corev1.ContainerPort{{Name: "metrics", ContainerPort: 9100}, {Name: "again", ContainerPort: 8080}}},
				{Name: patches.ElectorContainerName, Ports: []corev1.ContainerPort{{Name: "elector", ContainerPort: patches.ElectorPort}}},
			},
			want: []corev1.ServicePort{sp("http", "TCP", 8080), sp("metrics", "TCP", 9100)},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := servicePorts(tc.containers); !equality.Semantic.DeepEqual(got, tc.want) {
				t.Errorf("ports:\n got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

// reconcileService runs the controller twice on Deployment "a" of "apps"
// and returns the Service a-leader, nil when absent.
func reconcileService(t *testing.T, c client.Client, rec events.EventRecorder) *corev1.Service {
	t.Helper()
	r := &LeaderService{Client: c, Reader: c, Deployments: c, Namespaces: c, Recorder: rec}
	for range 2 {
		if _, err := r.Reconcile(context.Background(), ctrl.Request{NamespacedName: client.ObjectKey{Namespace: "apps", Name: "a"}}); err != nil {
			t.Fatalf("reconcile: %v", err)
		}
	}
	s := &corev1.Service{}
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: "apps", Name: "a-leader"}, s); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		t.Fatalf("get service: %v", err)
	}
	return s
}

func TestLeaderServiceCreated(t *testing.T) {
	d := deploy("a", withLeaderService, "", corev1.ContainerPort{Name: "http", ContainerPort: 8080})
	s := reconcileService(t, newFakeClient(d), events.NewFakeRecorder(10))
	if s == nil {
		t.Fatal("no leader Service")
	}
	wantSelector := map[string]string{"app": "a", "tier": "backend", patches.RoleLabel: patches.RoleLeader}
	if !equality.Semantic.DeepEqual(s.Spec.Selector, wantSelector) {
		t.Errorf("selector %v, want %v", s.Spec.Selector, wantSelector)
	}
	if s.Spec.Type != corev1.ServiceTypeClusterIP || s.Spec.ClusterIP == corev1.ClusterIPNone {
		t.Errorf("type %s clusterIP %q, want a ClusterIP Service", s.Spec.Type, s.Spec.ClusterIP)
	}
	if len(s.Spec.Ports) != 1 || s.Spec.Ports[0].Port != 8080 {
		t.Errorf("ports %+v, want 8080", s.Spec.Ports)
	}
	if !metav1.IsControlledBy(s, d) || !managed(s) {
		t.Errorf("owner references %+v, labels %v: want controlled by Deployment a and labelled", s.OwnerReferences, s.Labels)
	}
}

func TestLeaderServiceHeadlessWithoutPorts(t *testing.T) {
	s := reconcileService(t, newFakeClient(deploy("a", withLeaderService, "")), events.NewFakeRecorder(10))
	if s == nil || s.Spec.ClusterIP != corev1.ClusterIPNone || len(s.Spec.Ports) != 0 {
		t.Fatalf("got %+v, want a headless Service without ports", s)
	}
}

func TestLeaderServiceRemoved(t *testing.T) {
	tests := map[string]map[string]string{
		"the annotation is removed":      election,
		"the annotation is false":        {patches.AnnotationSingleton: "true", patches.AnnotationMode: "election", patches.AnnotationLeaderService: "false"},
		"the Deployment leaves election": {patches.AnnotationSingleton: "true", patches.AnnotationMode: "replicas", patches.AnnotationLeaderService: "true"},
	}
	for name, annotations := range tests {
		t.Run(name, func(t *testing.T) {
			d := deploy("a", withLeaderService, "", corev1.ContainerPort{Name: "http", ContainerPort: 8080})
			c := newFakeClient(d)
			if reconcileService(t, c, events.NewFakeRecorder(10)) == nil {
				t.Fatal("no leader Service to begin with")
			}
			d = getDeployment(t, c, "a")
			d.Annotations = annotations
			if err := c.Update(context.Background(), d); err != nil {
				t.Fatalf("update deployment: %v", err)
			}
			if s := reconcileService(t, c, events.NewFakeRecorder(10)); s != nil {
				t.Errorf("leader Service still there: %+v", s.ObjectMeta)
			}
		})
	}
}

func TestLeaderServiceFollowsTheTemplate(t *testing.T) {
	c := newFakeClient(deploy("a", withLeaderService, "", corev1.ContainerPort{Name: "http", ContainerPort: 8080}))
	reconcileService(t, c, events.NewFakeRecorder(10))
	d := getDeployment(t, c, "a")
	d.Spec.Template.Labels["version"] = "v2"
	d.Spec.Template.Spec.Containers[0].Ports = []corev1.ContainerPort{{Name: "http", ContainerPort: 8081}}
	if err := c.Update(context.Background(), d); err != nil {
		t.Fatalf("update deployment: %v", err)
	}
	s := reconcileService(t, c, events.NewFakeRecorder(10))
	if s.Spec.Selector["version"] != "v2" || len(s.Spec.Ports) != 1 || s.Spec.Ports[0].Port != 8081 {
		t.Errorf("selector %v ports %+v, want version v2 and port 8081", s.Spec.Selector, s.Spec.Ports)
	}
}

func TestLeaderServiceLeavesOthersAlone(t *testing.T) {
	theirs := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "a-leader", Namespace: "apps"},
		Spec:       corev1.ServiceSpec{Selector: map[string]string{"app": "theirs"}, Ports: []corev1.ServicePort{{Port: 80}}},
	}
	rec := events.NewFakeRecorder(10)
	c := newFakeClient(deploy("a", withLeaderService, "", corev1.ContainerPort{ContainerPort: 8080}), theirs)
	s := reconcileService(t, c, rec)
	if s.Spec.Selector["app"] != "theirs" || managed(s) {
		t.Errorf("a Service we do not own was changed: %+v", s)
	}
	select {
	case e := <-rec.Events:
		want := "Warning LeaderServiceConflict Service a-leader exists and is not managed by singleton-webhook; rename or delete it to get a leader Service"
		if e != want {
			t.Errorf("event:\n got %s\nwant %s", e, want)
		}
	default:
		t.Error("no Event about the conflict")
	}
	// Removing the annotation must not delete it either.
	d := getDeployment(t, c, "a")
	d.Annotations = election
	if err := c.Update(context.Background(), d); err != nil {
		t.Fatalf("update deployment: %v", err)
	}
	if reconcileService(t, c, rec) == nil {
		t.Error("a Service we do not own was deleted")
	}
}

func getDeployment(t *testing.T, c client.Client, name string) *appsv1.Deployment {
	t.Helper()
	d := &appsv1.Deployment{}
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: "apps", Name: name}, d); err != nil {
		t.Fatalf("get deployment: %v", err)
	}
	return d
}
