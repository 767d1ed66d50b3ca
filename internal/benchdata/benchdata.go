// Package benchdata builds the Deployments and AdmissionReviews the
// benchmarks send: a realistic one (3 containers, ~6 KB of JSON) and a large
// one (~200 KB), the same in every benchmark so their numbers compare.
package benchdata

import (
	"encoding/json"
	"fmt"

	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Sizes of the two benchmark Deployments: containers and environment
// variables per container.
const (
	RealisticContainers, RealisticEnvs = 3, 20
	LargeContainers, LargeEnvs         = 40, 140
)

// Deployment builds a singleton Deployment with the given number of
// containers and environment variables per container: 3 containers and 20
// variables give the ~6 KB "realistic" object, 40 and 140 the ~200 KB one.
func Deployment(containers, envs int) *appsv1.Deployment {
	replicas := int32(3)
	surge := intstr.FromString("25%")
	d := &appsv1.Deployment{
		TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: metav1.ObjectMeta{
			Name: "orders-consumer", Namespace: "shop",
			Labels: map[string]string{"app.kubernetes.io/name": "orders-consumer", "app.kubernetes.io/part-of": "shop"},
			Annotations: map[string]string{
				"singleton":                         "true",
				"deployment.kubernetes.io/revision": "7",
			},
		},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app.kubernetes.io/name": "orders-consumer"}},
			Strategy: appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDeployment{MaxSurge: &surge, MaxUnavailable: &surge}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app.kubernetes.io/name": "orders-consumer"}},
			},
		},
	}
	for i := range containers {
		c := corev1.Container{
			Name:  fmt.Sprintf("container-%d", i),
			Image: fmt.Sprintf("registry.example.com/shop/orders-consumer-%d:v1.42.%d", i, i),
			Args:  []string{"--queue=orders", "--concurrency=1", "--log-format=json"},
			Ports: []corev1.ContainerPort{{Name: fmt.Sprintf("http-%d", i), ContainerPort: int32(8080 + i), Protocol: corev1.ProtocolTCP}},
			Resources: corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("128Mi")},
				Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("256Mi")},
			},
			ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
				Path: "/ready", Port: intstr.FromInt32(int32(8080 + i))}}, PeriodSeconds: 5},
		}
		for j := range envs {
			c.Env = append(c.Env, corev1.EnvVar{Name: fmt.Sprintf("SETTING_%d_%d", i, j),
				Value: fmt.Sprintf("value-of-setting-number-%d-for-container-%d", j, i)})
		}
		d.Spec.Template.Spec.Containers = append(d.Spec.Template.Spec.Containers, c)
	}
	return d
}

// Review encodes an AdmissionReview for a CREATE of d.
func Review(d *appsv1.Deployment) []byte {
	raw, err := json.Marshal(d)
	if err != nil {
		panic(err) // a typed Deployment always encodes
	}
	ar := admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID:       types.UID("0b6f1a2e-5d7e-4c1a-9e36-3f7d2b8a9c10"),
			Kind:      metav1.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"},
			Resource:  metav1.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"},
			Name:      d.Name,
			Namespace: d.Namespace,
			Operation: admissionv1.Create,
		},
	}
	ar.Request.Object.Raw = raw
	body, err := json.Marshal(ar)
	if err != nil {
		panic(err) // a typed AdmissionReview always encodes
	}
	return body
}
