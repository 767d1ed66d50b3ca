package controllers

import (
	"context"
	"fmt"
	"maps"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/singleton-webhook/singleton-webhook/patches"
)

// LeaderService keeps the Service <deployment>-leader of each election-mode
// Deployment annotated singleton.dev/leader-service: "true". It selects the
// pod template's labels plus singleton.dev/role=leader, which the sidecar
// sets on the leading Pod only, so the active instance has a stable name:
// <deployment>-leader.<namespace>.svc.cluster.local.
//
// The Service is a ClusterIP Service with the ports of the app containers
// (the elector's excluded); a template without ports gets a headless
// Service instead (a ClusterIP Service needs a port), whose name resolves
// to the leader's Pod IP. The Deployment is its controller owner, so the
// garbage collector deletes it with the Deployment; the controller deletes
// it when the annotation goes away. A Service of that name the webhook did
// not make for this Deployment (owned.go) is never touched: an Event on the
// Deployment says so.
type LeaderService struct {
	// Client writes the Services and reads them from the manager's cache,
	// which holds only objects labelled ManagedByLabel.
	Client client.Client
	// Reader reads full Deployments, and Services the cache does not hold,
	// from the API server.
	Reader client.Reader
	// Deployments reads Deployment metadata (the manager's cache).
	Deployments client.Reader
	// Policy is the cluster-wide policy (the default mode).
	Policy patches.Policy
	// Scope is where the controller acts; elsewhere it changes nothing.
	Scope Scope
	// Namespaces reads Namespace metadata for Scope (the manager's cache).
	Namespaces client.Reader
	// Recorder records Events on the Deployment.
	Recorder events.EventRecorder
}

// serviceKept names the leader Service in Events.
var serviceKept = kept{kind: "Service", reason: "LeaderServiceConflict",
	remedy:  "rename or delete it to get a leader Service",
	created: "LeaderServiceCreated", createdNote: "selects the leader only"}

// Reconcile implements reconcile.Reconciler; the request is a Deployment.
func (r *LeaderService) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	if in, err := r.Scope.Contains(ctx, r.Namespaces, req.Namespace); err != nil || !in {
		return ctrl.Result{}, err
	}
	k := keeper{Client: r.Client, Reader: r.Reader, Recorder: r.Recorder}
	m := &metav1.PartialObjectMetadata{}
	m.SetGroupVersionKind(deploymentGVK)
	if err := r.Deployments.Get(ctx, req.NamespacedName, m); err != nil {
		if !apierrors.IsNotFound(err) {
			return ctrl.Result{}, fmt.Errorf("read deployment metadata: %w", err)
		}
		m = nil
	}
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: req.Namespace, Name: req.Name + patches.LeaderServiceSuffix}}
	if m != nil && m.DeletionTimestamp == nil && electionMode(m.Annotations, r.Policy) && patches.LeaderServiceWanted(m.Annotations) {
		d := &appsv1.Deployment{}
		if err := r.Reader.Get(ctx, req.NamespacedName, d); err != nil {
			return ctrl.Result{}, client.IgnoreNotFound(err)
		}
		want := leaderService(d)
		_, err := k.ensure(ctx, d, svc, serviceKept, func() error {
			if svc.ResourceVersion != "" && headless(svc) != headless(want) {
				return errReplace // clusterIP is immutable
			}
			svc.Spec.Type, svc.Spec.Selector, svc.Spec.Ports = want.Spec.Type, want.Spec.Selector, want.Spec.Ports
			if svc.ResourceVersion == "" {
				svc.Spec.ClusterIP = want.Spec.ClusterIP
			}
			return nil
		})
		return ctrl.Result{}, err
	}
	if m == nil {
		return ctrl.Result{}, k.removeFor(ctx, svc, req.Name, nil)
	}
	return ctrl.Result{}, k.removeFor(ctx, svc, req.Name, m)
}

// leaderService is the Service wanted for d.
func leaderService(d *appsv1.Deployment) *corev1.Service {
	selector := maps.Clone(d.Spec.Template.Labels)
	if selector == nil {
		selector = map[string]string{}
	}
	selector[patches.RoleLabel] = patches.RoleLeader
	s := &corev1.Service{
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceTypeClusterIP,
			Selector: selector,
			Ports:    servicePorts(d.Spec.Template.Spec.Containers),
		},
	}
	if len(s.Spec.Ports) == 0 {
		s.Spec.ClusterIP = corev1.ClusterIPNone
	}
	return s
}

func headless(s *corev1.Service) bool { return s.Spec.ClusterIP == corev1.ClusterIPNone }

// servicePorts copies the app containers' ports: named after the container
// port, or "<protocol>-<port>" (a Service with several ports needs names),
// each port and each name once.
func servicePorts(cs []corev1.Container) []corev1.ServicePort {
	var ports []corev1.ServicePort
	seen := map[string]bool{}
	for _, c := range cs {
		if c.Name == patches.ElectorContainerName {
			continue
		}
		for _, p := range c.Ports {
			proto := p.Protocol
			if proto == "" {
				proto = corev1.ProtocolTCP
			}
			name := p.Name
			if name == "" {
				name = strings.ToLower(string(proto)) + "-" + strconv.Itoa(int(p.ContainerPort))
			}
			byPort := string(proto) + "/" + strconv.Itoa(int(p.ContainerPort))
			if seen[byPort] || seen[name] {
				continue
			}
			seen[byPort], seen[name] = true, true
			ports = append(ports, corev1.ServicePort{
				Name: name, Protocol: proto, Port: p.ContainerPort,
				TargetPort: intstr.FromInt32(p.ContainerPort),
			})
		}
	}
	return ports
}
