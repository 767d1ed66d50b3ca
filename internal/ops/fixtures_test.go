package ops

import (
	"time"

	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/singleton-webhook/singleton-webhook/controllers"
	"github.com/singleton-webhook/singleton-webhook/patches"
)

// t0 is the fixtures' clock: objects are created relative to it and the
// snapshots are read at it.
var t0 = time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)

func at(d time.Duration) metav1.Time { return metav1.NewTime(t0.Add(d)) }

// deployment is a singleton Deployment as the webhook admits it in mode
// (admitted), or as written before the install (!admitted).
func deployment(ns, name string, mode patches.Mode, admitted bool) *appsv1.Deployment {
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, CreationTimestamp: at(-time.Hour),
			Annotations: map[string]string{patches.AnnotationSingleton: "true", patches.AnnotationMode: string(mode)}},
		Spec: appsv1.DeploymentSpec{Template: corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}, Annotations: map[string]string{}},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app:1"}}},
		}},
		Status: appsv1.DeploymentStatus{Replicas: 1},
	}
	if !admitted {
		return d
	}
	d.Spec.Template.Labels[patches.LabelDeployment] = name
	if mode == patches.ModeElection {
		d.Spec.Template.Annotations[patches.AnnotationInjected] = "v1.2.0"
	} else {
		d.Spec.Template.Spec.SchedulingGates = []corev1.PodSchedulingGate{{Name: patches.GateOneAtATime}}
	}
	return d
}

// pod is a Pod of d's group created at created, on node (none: unscheduled),
// gated or not.
func pod(d *appsv1.Deployment, name, node string, created time.Duration, gated bool) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: d.Namespace, Name: name, CreationTimestamp: at(created),
			Labels: map[string]string{patches.LabelDeployment: patches.DeploymentLabelValue(d.Name)}},
		Spec:   corev1.PodSpec{NodeName: node},
		Status: corev1.PodStatus{Phase: corev1.PodRunning},
	}
	if gated {
		p.Spec.SchedulingGates = []corev1.PodSchedulingGate{{Name: patches.GateOneAtATime}}
		p.Status.Phase = corev1.PodPending
	}
	return p
}

// deleting marks p deleted with its grace period ending at end.
func deleting(p *corev1.Pod, end time.Duration) *corev1.Pod {
	ts := at(end)
	p.DeletionTimestamp = &ts
	return p
}

// lease is an election Lease held by holder, renewed at renewed, created
// by the webhook's controller (managed) or not.
func lease(ns, name, holder string, renewed time.Duration, managed bool) *coordinationv1.Lease {
	l := &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, CreationTimestamp: metav1.NewTime(time.Unix(1767225600, 0))},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To(holder), LeaseDurationSeconds: ptr.To(int32(15)),
			AcquireTime: ptr.To(metav1.NewMicroTime(t0.Add(-10 * time.Minute))), RenewTime: ptr.To(metav1.NewMicroTime(t0.Add(renewed))),
			LeaseTransitions: ptr.To(int32(3))},
	}
	if managed {
		l.Labels = map[string]string{controllers.ManagedByLabel: controllers.ManagedBy}
	}
	return l
}
