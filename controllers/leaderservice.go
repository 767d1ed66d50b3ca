package controllers

import (
	"context"
	"fmt"
	"maps"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

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
// it when the annotation goes away. A Service of that name it does not own
// is never touched: an Event on the Deployment says so.
type LeaderService struct {
	// Client writes the Services.
	Client client.Client
	// Reader reads full Deployments and Services from the API server.
	Reader client.Reader
	// Deployments reads Deployment metadata (the manager's cache).
	Deployments client.Reader
	// Owned reads the Services carrying ManagedByLabel.
	Owned client.Reader
	// Policy is the cluster-wide policy (the default mode).
	Policy patches.Policy
	// Recorder records Events on the Deployment.
	Recorder events.EventRecorder
}

// Reconcile implements reconcile.Reconciler; the request is a Deployment.
func (r *LeaderService) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	m := &metav1.PartialObjectMetadata{}
	m.SetGroupVersionKind(appsv1.SchemeGroupVersion.WithKind("Deployment"))
	if err := r.Deployments.Get(ctx, req.NamespacedName, m); err != nil {
		if !apierrors.IsNotFound(err) {
			return ctrl.Result{}, fmt.Errorf("read deployment metadata: %w", err)
		}
		m = nil
	}
	key := types.NamespacedName{Namespace: req.Namespace, Name: req.Name + patches.LeaderServiceSuffix}
	have := &corev1.Service{}
	if err := r.Owned.Get(ctx, key, have); err != nil {
		if !apierrors.IsNotFound(err) {
			return ctrl.Result{}, fmt.Errorf("read leader service: %w", err)
		}
		have = nil
	}
	if m == nil || m.DeletionTimestamp != nil || !electionMode(m.Annotations, r.Policy) ||
		!patches.LeaderServiceWanted(m.Annotations) {
		return ctrl.Result{}, r.remove(ctx, have, req.Name)
	}
	d := &appsv1.Deployment{}
	if err := r.Reader.Get(ctx, req.NamespacedName, d); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	return ctrl.Result{}, r.ensure(ctx, d, leaderService(d), have)
}

// remove deletes our leader Service of the Deployment named owner, if any.
func (r *LeaderService) remove(ctx context.Context, have *corev1.Service, owner string) error {
	if have == nil || !managed(have) || !controlledBy(have, owner, "") {
		return nil
	}
	err := r.Client.Delete(ctx, have, client.Preconditions{UID: &have.UID})
	if client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("delete leader service %s: %w", have.Name, err)
	}
	logf.FromContext(ctx).Info("removed a leader Service no longer asked for", "service", have.Name)
	return nil
}

// controlledBy reports whether a Deployment named name (and of that UID,
// unless empty) is o's controller.
func controlledBy(o metav1.Object, name string, uid types.UID) bool {
	ref := metav1.GetControllerOf(o)
	return ref != nil && ref.Kind == "Deployment" && ref.APIVersion == appsv1.SchemeGroupVersion.String() &&
		ref.Name == name && (uid == "" || ref.UID == uid)
}

// ensure creates or fixes the Service.
func (r *LeaderService) ensure(ctx context.Context, d *appsv1.Deployment, want, have *corev1.Service) error {
	log := logf.FromContext(ctx).WithValues("service", want.Name)
	if have != nil && (!controlledBy(have, d.Name, d.UID) || headless(have) != headless(want)) {
		// Left by an earlier Deployment of that name, or switching between
		// ClusterIP and headless (immutable): replace it.
		if err := r.Client.Delete(ctx, have, client.Preconditions{UID: &have.UID}); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("replace leader service %s: %w", have.Name, err)
		}
		have = nil
	}
	if have == nil {
		return r.create(ctx, d, want)
	}
	if equality.Semantic.DeepEqual(have.Spec.Selector, want.Spec.Selector) &&
		equality.Semantic.DeepEqual(have.Spec.Ports, want.Spec.Ports) {
		return nil
	}
	fixed := have.DeepCopy()
	fixed.Spec.Selector, fixed.Spec.Ports = want.Spec.Selector, want.Spec.Ports
	if err := r.Client.Update(ctx, fixed); err != nil {
		return fmt.Errorf("update leader service %s: %w", want.Name, err)
	}
	log.Info("updated a leader Service to the Deployment's labels and ports")
	return nil
}

func (r *LeaderService) create(ctx context.Context, d *appsv1.Deployment, want *corev1.Service) error {
	log := logf.FromContext(ctx).WithValues("service", want.Name)
	err := r.Client.Create(ctx, want)
	if err == nil {
		log.Info("created a leader Service")
		r.Recorder.Eventf(d, nil, corev1.EventTypeNormal, "LeaderServiceCreated", "Create",
			"Service %s selects the leader only", want.Name)
		return nil
	}
	if !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create leader service %s: %w", want.Name, err)
	}
	other := &corev1.Service{}
	if err := r.Reader.Get(ctx, client.ObjectKeyFromObject(want), other); err != nil {
		return fmt.Errorf("read leader service %s: %w", want.Name, err)
	}
	if managed(other) && controlledBy(other, d.Name, d.UID) {
		return nil // ours, the cache had not seen it yet; its event comes next
	}
	log.Info("not touching a Service of the same name that another owner manages")
	r.Recorder.Eventf(d, nil, corev1.EventTypeWarning, "LeaderServiceConflict", "Create",
		"Service %s exists and is not managed by %s; rename or delete it to get a leader Service",
		want.Name, ManagedBy)
	return nil
}

// leaderService is the Service wanted for d.
func leaderService(d *appsv1.Deployment) *corev1.Service {
	selector := maps.Clone(d.Spec.Template.Labels)
	if selector == nil {
		selector = map[string]string{}
	}
	selector[patches.RoleLabel] = patches.RoleLeader
	yes := true
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{
			Name: d.Name + patches.LeaderServiceSuffix, Namespace: d.Namespace,
			Labels: map[string]string{ManagedByLabel: ManagedBy},
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: appsv1.SchemeGroupVersion.String(), Kind: "Deployment",
				Name: d.Name, UID: d.UID, Controller: &yes,
			}},
		},
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
