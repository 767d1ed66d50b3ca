package webhook

import (
	"reflect"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func TestPruneEqualKeepsOnlyWhatDiffers(t *testing.T) {
	before := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "app", Annotations: map[string]string{"singleton": "true"}},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(int32(3)),
			Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app:1"}}}},
		},
	}
	after := before.DeepCopy()
	after.Spec.Replicas = ptr.To(int32(1))
	after.Spec.Template.Spec.SchedulingGates = []corev1.PodSchedulingGate{{Name: "gate"}}
	seen := presence{}
	pruneEqual(reflect.ValueOf(before).Elem(), reflect.ValueOf(after).Elem(), "", seen)

	if before.Name != "" || after.Annotations != nil || after.Spec.Template.Spec.Containers != nil {
		t.Errorf("equal fields kept: name %q, annotations %v, containers %v", before.Name, after.Annotations, after.Spec.Template.Spec.Containers)
	}
	if *before.Spec.Replicas != 3 || *after.Spec.Replicas != 1 || len(after.Spec.Template.Spec.SchedulingGates) != 1 {
		t.Errorf("differing fields lost: replicas %v → %v, gates %v", before.Spec.Replicas, after.Spec.Replicas, after.Spec.Template.Spec.SchedulingGates)
	}
	want := presence{
		"/metadata": true, "/spec": true, "/spec/replicas": true, "/spec/template": true,
		"/spec/template/metadata": false, "/spec/template/spec": true, "/spec/template/spec/schedulingGates": false,
	}
	for p, w := range want {
		if got, ok := seen[p]; !ok || got != w {
			t.Errorf("presence of %s: %v (recorded %v), want %v", p, got, ok, w)
		}
	}
}
