package controllers

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8stypes "k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/event"

	"github.com/singleton-webhook/singleton-webhook/patches"
)

// controllerRef is the owner reference the controllers set on what they
// keep for the Deployment name made by deploy.
func controllerRef(name string) []metav1.OwnerReference {
	return []metav1.OwnerReference{*metav1.NewControllerRef(deploy(name, nil, ""), deploymentGVK)}
}

func newFakeClient(objs ...client.Object) client.Client {
	return fake.NewClientBuilder().WithScheme(clientgoscheme.Scheme).WithObjects(objs...).Build()
}

// deploy is a Deployment of namespace "apps" with annotations, a
// ServiceAccount (empty: none named) and the template's container ports.
func deploy(name string, annotations map[string]string, sa string, ports ...corev1.ContainerPort) *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "apps", UID: k8stypes.UID("uid-" + name), Annotations: annotations},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name, "tier": "backend"}},
				Spec: corev1.PodSpec{ServiceAccountName: sa, Containers: []corev1.Container{
					{Name: "app", Image: "registry.k8s.io/pause:3.10", Ports: ports},
				}},
			},
		},
	}
}

var (
	election          = map[string]string{patches.AnnotationSingleton: "true", patches.AnnotationMode: "election"}
	replicas          = map[string]string{patches.AnnotationSingleton: "true", patches.AnnotationMode: "replicas"}
	withLeaderService = map[string]string{patches.AnnotationSingleton: "true", patches.AnnotationMode: "election", patches.AnnotationLeaderService: "true"}
	notASingleton     = map[string]string{"team": "payments"}
	singletonFalse    = map[string]string{patches.AnnotationSingleton: "false"}
)

func TestElectionEvents(t *testing.T) {
	meta := func(annotations map[string]string, generation int64) *metav1.PartialObjectMetadata {
		return &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{
			Name: "d", Namespace: "apps", Annotations: annotations, Generation: generation}}
	}
	now := metav1.Now()
	deleting := meta(election, 1)
	deleting.DeletionTimestamp = &now
	tests := map[string]struct {
		old, new *metav1.PartialObjectMetadata
		want     bool
	}{
		"a status-only update of a singleton is dropped":           {meta(election, 1), meta(election, 1), false},
		"a spec update of a singleton passes":                      {meta(election, 1), meta(election, 2), true},
		"a mode switch passes":                                     {meta(election, 1), meta(replicas, 1), true},
		"removing every singleton annotation passes":               {meta(election, 1), meta(notASingleton, 1), true},
		"a spec update of an ordinary Deployment is dropped":       {meta(notASingleton, 1), meta(notASingleton, 2), false},
		"the start of a foreground deletion of a singleton passes": {meta(election, 1), deleting, true},
	}
	p := electionEvents(patches.Policy{})
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := p.Update(event.UpdateEvent{ObjectOld: tc.old, ObjectNew: tc.new}); got != tc.want {
				t.Errorf("Update passed %t, want %t", got, tc.want)
			}
		})
	}
	if !p.Create(event.CreateEvent{Object: meta(election, 1)}) || !p.Delete(event.DeleteEvent{Object: meta(replicas, 1)}) {
		t.Error("creation of an election-mode singleton or deletion of a singleton dropped")
	}
	if p.Create(event.CreateEvent{Object: meta(notASingleton, 1)}) || p.Delete(event.DeleteEvent{Object: meta(nil, 1)}) {
		t.Error("creation or deletion of an ordinary Deployment passed")
	}
	// What they made for it while in election mode queues it at start.
	if p.Create(event.CreateEvent{Object: meta(replicas, 1)}) {
		t.Error("creation of a replicas-mode singleton passed")
	}
	byPolicy := meta(map[string]string{patches.AnnotationSingleton: "true"}, 1)
	if p.Create(event.CreateEvent{Object: byPolicy}) ||
		!electionEvents(patches.Policy{DefaultMode: patches.ModeElection}).Create(event.CreateEvent{Object: byPolicy}) {
		t.Error("creation of a singleton without a mode did not follow the policy's default mode")
	}
}

func TestRunsElector(t *testing.T) {
	injected := deploy("d", singletonFalse, "")
	injected.Spec.Template.Annotations = map[string]string{patches.AnnotationInjected: "v1"}
	tests := map[string]struct {
		d    *appsv1.Deployment
		p    patches.Policy
		want bool
	}{
		"an election-mode singleton":                      {deploy("d", election, ""), patches.Policy{}, true},
		"a replicas-mode singleton":                       {deploy("d", replicas, ""), patches.Policy{}, false},
		"a singleton without a mode, election by policy":  {deploy("d", map[string]string{patches.AnnotationSingleton: "true"}, ""), patches.Policy{DefaultMode: patches.ModeElection}, true},
		"a singleton without a mode, replicas by policy":  {deploy("d", map[string]string{patches.AnnotationSingleton: "true"}, ""), patches.Policy{}, false},
		"an opted-out Deployment whose pods still run it": {injected, patches.Policy{}, true},
		"a Deployment with an invalid mode":               {deploy("d", map[string]string{patches.AnnotationSingleton: "true", patches.AnnotationMode: "leader"}, ""), patches.Policy{}, false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, injected := tc.d.Spec.Template.Annotations[patches.AnnotationInjected]
			if got := runsElector(injected, tc.d.Annotations, tc.p); got != tc.want {
				t.Errorf("runsElector = %t, want %t", got, tc.want)
			}
		})
	}
}

func TestServiceAccountOf(t *testing.T) {
	tests := map[string]struct {
		spec corev1.PodSpec
		want string
	}{
		"none named":                    {corev1.PodSpec{}, "default"},
		"serviceAccountName":            {corev1.PodSpec{ServiceAccountName: "worker"}, "worker"},
		"only the deprecated field":     {corev1.PodSpec{DeprecatedServiceAccount: "legacy"}, "legacy"},
		"both, serviceAccountName wins": {corev1.PodSpec{ServiceAccountName: "worker", DeprecatedServiceAccount: "legacy"}, "worker"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := serviceAccountOf(&tc.spec); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestOwnershipEvents(t *testing.T) {
	lease := func(labels map[string]string, owner string, holder string) *coordinationv1.Lease {
		l := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "a", Namespace: "apps", Labels: labels}}
		if owner != "" {
			l.OwnerReferences = controllerRef(owner)
		}
		l.Spec.HolderIdentity = &holder
		return l
	}
	ours := map[string]string{ManagedByLabel: ManagedBy}
	tests := map[string]struct {
		old, new *coordinationv1.Lease
		want     bool
	}{
		"a renewal is dropped":       {lease(ours, "a", "a-1"), lease(ours, "a", "a-1"), false},
		"a takeover is dropped":      {lease(ours, "a", "a-1"), lease(ours, "a", "a-2"), false},
		"a label removed passes":     {lease(ours, "a", "a-1"), lease(nil, "a", "a-1"), true},
		"an owner replaced passes":   {lease(ours, "a", "a-1"), lease(ours, "b", "a-1"), true},
		"an owner reference dropped": {lease(ours, "a", "a-1"), lease(ours, "", "a-1"), true},
	}
	p := ownershipEvents()
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := p.Update(event.UpdateEvent{ObjectOld: tc.old, ObjectNew: tc.new}); got != tc.want {
				t.Errorf("Update passed %t, want %t", got, tc.want)
			}
		})
	}
}
