package testenv

import (
	"context"
	"fmt"
	"os"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"
)

// LocalWebhookConfiguration reads the MutatingWebhookConfiguration in file
// (strictly: an unknown field is an error) and points every entry at the
// webhook served on baseURL ("https://127.0.0.1:9443"): the service reference
// becomes the URL baseURL+path, and caBundle is set. Everything else, match
// conditions, failure policies and annotations included, is kept as the
// file says, so tests exercise the configuration users install.
func LocalWebhookConfiguration(file, baseURL string, caBundle []byte) (*admissionregistrationv1.MutatingWebhookConfiguration, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read webhook configuration: %w", err)
	}
	c := &admissionregistrationv1.MutatingWebhookConfiguration{}
	if err := yaml.UnmarshalStrict(b, c); err != nil {
		return nil, fmt.Errorf("decode webhook configuration %s: %w", file, err)
	}
	if c.APIVersion != "admissionregistration.k8s.io/v1" || c.Kind != "MutatingWebhookConfiguration" {
		return nil, fmt.Errorf("decode webhook configuration %s: got %s %s, want admissionregistration.k8s.io/v1 MutatingWebhookConfiguration",
			file, c.APIVersion, c.Kind)
	}
	if len(c.Webhooks) == 0 {
		return nil, fmt.Errorf("webhook configuration %s has no webhooks", file)
	}
	for i := range c.Webhooks {
		cc := &c.Webhooks[i].ClientConfig
		if cc.Service == nil || cc.Service.Path == nil {
			return nil, fmt.Errorf("webhook %s in %s: want a service reference with a path", c.Webhooks[i].Name, file)
		}
		url := baseURL + *cc.Service.Path
		cc.URL, cc.Service, cc.CABundle = &url, nil, caBundle
	}
	return c, nil
}

// InstallWebhookConfiguration creates the configuration, or replaces the one
// of the same name.
func InstallWebhookConfiguration(ctx context.Context, cfg *rest.Config, c *admissionregistrationv1.MutatingWebhookConfiguration) error {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("install webhook configuration: %w", err)
	}
	api := cs.AdmissionregistrationV1().MutatingWebhookConfigurations()
	c = c.DeepCopy()
	_, err = api.Create(ctx, c, metav1.CreateOptions{})
	if !apierrors.IsAlreadyExists(err) {
		if err != nil {
			return fmt.Errorf("install webhook configuration %s: %w", c.Name, err)
		}
		return nil
	}
	old, err := api.Get(ctx, c.Name, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("install webhook configuration %s: %w", c.Name, err)
	}
	c.ResourceVersion = old.ResourceVersion
	if _, err := api.Update(ctx, c, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("install webhook configuration %s: %w", c.Name, err)
	}
	return nil
}

// WaitForMutation waits until the API server mutates a singleton Deployment,
// proving that the configuration is in effect and the webhook answers: it
// creates, in dry-run, an annotated Deployment asking for 2 replicas in
// namespace "default" until the answer has 1. It gives up when ctx is done,
// with the last refusal in the error.
func WaitForMutation(ctx context.Context, cfg *rest.Config) error {
	quiet := rest.CopyConfig(cfg)
	quiet.WarningHandler = rest.NoWarnings{} // the probe's own warnings are expected
	cs, err := kubernetes.NewForConfig(quiet)
	if err != nil {
		return fmt.Errorf("wait for the webhook: %w", err)
	}
	probe := probeDeployment()
	var last error
	for {
		got, err := cs.AppsV1().Deployments(probe.Namespace).Create(ctx, probe.DeepCopy(),
			metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		switch {
		case err != nil:
			last = err
		case got.Spec.Replicas == nil || *got.Spec.Replicas != 1:
			last = fmt.Errorf("dry-run create kept %v replicas: the webhook configuration is not in effect yet", got.Spec.Replicas)
		default:
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for the webhook to mutate Deployments: %w (last: %w)", ctx.Err(), last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func probeDeployment() *appsv1.Deployment {
	two := int32(2)
	labels := map[string]string{"app": "singleton-webhook-probe"}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{
			Name:        "singleton-webhook-probe",
			Namespace:   metav1.NamespaceDefault,
			Annotations: map[string]string{"singleton": "true"},
		},
		Spec: appsv1.DeploymentSpec{
			Replicas: &two,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "probe", Image: "registry.k8s.io/pause:3.10",
				}}},
			},
		},
	}
}
