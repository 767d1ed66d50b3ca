package webhook

import (
	"reflect"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/singleton-webhook/singleton-webhook/internal/benchdata"
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

// TestEqualAgreesWithDeepEqual checks the diff's equality against
// reflect.DeepEqual on the realistic Deployment, its copy, and copies that
// differ in one place each: a scalar, a map entry, a slice element, a nil
// against an empty value, a Quantity.
func TestEqualAgreesWithDeepEqual(t *testing.T) {
	base := benchdata.Deployment(benchdata.RealisticContainers, benchdata.RealisticEnvs)
	changes := map[string]func(d *appsv1.Deployment){
		"copy":           func(*appsv1.Deployment) {},
		"replicas":       func(d *appsv1.Deployment) { d.Spec.Replicas = ptr.To(int32(1)) },
		"nil replicas":   func(d *appsv1.Deployment) { d.Spec.Replicas = nil },
		"annotation":     func(d *appsv1.Deployment) { d.Annotations["singleton"] = "false" },
		"new annotation": func(d *appsv1.Deployment) { d.Annotations["x"] = "" },
		"env value":      func(d *appsv1.Deployment) { d.Spec.Template.Spec.Containers[2].Env[19].Value = "v" },
		"empty args":     func(d *appsv1.Deployment) { d.Spec.Template.Spec.Containers[0].Args = []string{} },
		"nil env":        func(d *appsv1.Deployment) { d.Spec.Template.Spec.Containers[1].Env = nil },
		"quantity": func(d *appsv1.Deployment) {
			d.Spec.Template.Spec.Containers[0].Resources.Limits[corev1.ResourceMemory] = resource.MustParse("512Mi")
		},
		"empty labels": func(d *appsv1.Deployment) { d.Spec.Template.Labels = map[string]string{} },
		"gates": func(d *appsv1.Deployment) {
			d.Spec.Template.Spec.SchedulingGates = []corev1.PodSchedulingGate{{Name: "g"}}
		},
	}
	for name, change := range changes {
		t.Run(name, func(t *testing.T) {
			d := base.DeepCopy()
			change(d)
			want := reflect.DeepEqual(base, d)
			if got := equal(reflect.ValueOf(base).Elem(), reflect.ValueOf(d).Elem()); got != want {
				t.Errorf("equal = %t, reflect.DeepEqual = %t", got, want)
			}
			if name != "copy" && want {
				t.Fatal("the change changed nothing: the case tests nothing")
			}
		})
	}
}
