package ops

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/version"
	"k8s.io/client-go/kubernetes"

	"github.com/singleton-webhook/singleton-webhook/patches"
)

// dialTimeout bounds the TLS handshake with the webhook.
const dialTimeout = 5 * time.Second

// installCheck checks the install, step by step: the configuration, the
// Service's endpoints, the served certificate against the caBundle, and a
// dry-run probe through the API server. A step that fails stops the chain
// (its finding explains the later ones); the certificate's lifetime and the
// controllers' Lease are checked on their own.
type installCheck struct {
	cs     kubernetes.Interface
	in     Install
	now    time.Time
	result *CheckResult

	mwc *admissionregistrationv1.MutatingWebhookConfiguration
	// webhookVersion is the image tag of the webhook's Deployment, nil if
	// unknown or not a version.
	webhookVersion *version.Version
}

func (c *installCheck) run(ctx context.Context) {
	leaderElect := c.readDeployment(ctx)
	c.checkLeader(ctx, leaderElect)
	mwc, err := c.cs.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, c.in.WebhookConfiguration, metav1.GetOptions{})
	obj := "mutatingwebhookconfiguration/" + c.in.WebhookConfiguration
	switch {
	case apierrors.IsNotFound(err):
		c.result.add(CodeWebhookConfigurationMissing, SeverityError, obj,
			"kubectl apply -k manifests/  # or: helm upgrade --install singleton-webhook charts/singleton-webhook -n "+c.in.Namespace,
			"the webhook configuration %s does not exist: no singleton is enforced", c.in.WebhookConfiguration)
		return
	case err != nil:
		c.result.unread(obj, err)
		return
	}
	c.mwc = mwc
	w := deploymentsEntry(mwc)
	if w == nil {
		c.result.add(CodeWebhookConfigurationMissing, SeverityError, obj, "kubectl apply -k manifests/",
			"the webhook configuration %s has no entry for apps/v1 deployments", c.in.WebhookConfiguration)
		return
	}
	if !c.checkEndpoints(ctx, w) || !c.checkServedCert(ctx, w, obj) {
		return
	}
	c.probe(ctx, obj)
}

// deploymentsEntry is the configuration's entry for Deployments.
func deploymentsEntry(c *admissionregistrationv1.MutatingWebhookConfiguration) *admissionregistrationv1.MutatingWebhook {
	for i := range c.Webhooks {
		for _, r := range c.Webhooks[i].Rules {
			for _, res := range r.Resources {
				if res == "deployments" || res == "*" {
					return &c.Webhooks[i]
				}
			}
		}
	}
	return nil
}

// readDeployment reads the webhook's Deployment: its version, and whether
// it elects a leader for its controllers. Absent (a webhook run outside
// the cluster): neither is known.
func (c *installCheck) readDeployment(ctx context.Context) (leaderElect bool) {
	d, err := c.cs.AppsV1().Deployments(c.in.Namespace).Get(ctx, c.in.Deployment, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		c.result.Notes = append(c.result.Notes, fmt.Sprintf("no Deployment %s/%s: the webhook runs outside the cluster; its version and its controllers' leader are not checked", c.in.Namespace, c.in.Deployment))
		return false
	}
	if err != nil {
		c.result.unread("deployment "+c.in.Namespace+"/"+c.in.Deployment, err)
		return false
	}
	if cs := d.Spec.Template.Spec.Containers; len(cs) > 0 {
		if tag := imageTag(cs[0].Image); tag != "" {
			c.webhookVersion, _ = version.ParseGeneric(tag)
		}
		for _, a := range cs[0].Args {
			if a == "--leader-elect" || a == "--leader-elect=true" {
				leaderElect = true
			}
		}
	}
	return leaderElect
}

// imageTag is the tag of an image reference ("" if none).
func imageTag(image string) string {
	image, _, _ = strings.Cut(image, "@")
	i := strings.LastIndex(image, ":")
	if i < 0 || strings.Contains(image[i:], "/") {
		return ""
	}
	return image[i+1:]
}

// checkLeader checks the controllers' leader Lease: present (when the
// webhook elects a leader) and renewed within its duration.
func (c *installCheck) checkLeader(ctx context.Context, leaderElect bool) {
	obj := "lease/" + c.in.Namespace + "/" + c.in.LeaderLease
	fix := fmt.Sprintf("kubectl -n %s logs deployment/%s  # then: kubectl -n %s rollout restart deployment/%s", c.in.Namespace, c.in.Deployment, c.in.Namespace, c.in.Deployment)
	l, err := c.cs.CoordinationV1().Leases(c.in.Namespace).Get(ctx, c.in.LeaderLease, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err) && leaderElect:
		c.result.add(CodeControllersNotLeading, SeverityError, obj, fix,
			"no replica of the webhook has ever led its controllers (no Lease %s): gates are not lifted, role labels not set", c.in.LeaderLease)
		return
	case apierrors.IsNotFound(err):
		return
	case err != nil:
		c.result.unread(obj, err)
		return
	}
	if l.Spec.RenewTime == nil || l.Spec.LeaseDurationSeconds == nil || l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity == "" {
		c.result.add(CodeControllersNotLeading, SeverityError, obj, fix, "no replica of the webhook leads its controllers: the Lease has no holder")
		return
	}
	until := l.Spec.RenewTime.Add(time.Duration(*l.Spec.LeaseDurationSeconds) * time.Second)
	if c.now.After(until) {
		c.result.add(CodeControllersNotLeading, SeverityError, obj, fix,
			"no replica of the webhook leads its controllers: %s last renewed the Lease %s ago (duration %ds): gates are not lifted",
			*l.Spec.HolderIdentity, age(c.now, l.Spec.RenewTime.Time), *l.Spec.LeaseDurationSeconds)
	}
}

// checkEndpoints checks that a Service reference has ready endpoints; a URL
// reference has none to check.
func (c *installCheck) checkEndpoints(ctx context.Context, w *admissionregistrationv1.MutatingWebhook) bool {
	svc := w.ClientConfig.Service
	if svc == nil {
		return true
	}
	obj := "service/" + svc.Namespace + "/" + svc.Name
	slices, err := c.cs.DiscoveryV1().EndpointSlices(svc.Namespace).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + svc.Name})
	if err != nil {
		c.result.unread("endpointslices of "+obj, err)
		return true
	}
	for _, s := range slices.Items {
		for _, e := range s.Endpoints {
			if e.Conditions.Ready == nil || *e.Conditions.Ready {
				return true
			}
		}
	}
	c.result.add(CodeNoReadyEndpoints, SeverityError, obj,
		fmt.Sprintf("kubectl -n %s get pods -l app.kubernetes.io/name=singleton-webhook  # scaled to 0? kubectl -n %s scale deployment/%s --replicas=2", svc.Namespace, svc.Namespace, c.in.Deployment),
		"the webhook's Service has no ready endpoint: every write of a singleton Deployment is refused (failurePolicy Fail)")
	return false
}

// address is where the webhook of w serves, and the name its certificate
// must carry.
func address(w *admissionregistrationv1.MutatingWebhook) (addr, serverName string, err error) {
	if u := w.ClientConfig.URL; u != nil {
		p, err := url.Parse(*u)
		if err != nil {
			return "", "", fmt.Errorf("webhook URL %q: %w", *u, err)
		}
		port := p.Port()
		if port == "" {
			port = "443"
		}
		return net.JoinHostPort(p.Hostname(), port), p.Hostname(), nil
	}
	s := w.ClientConfig.Service
	port := int32(443)
	if s.Port != nil {
		port = *s.Port
	}
	host := s.Name + "." + s.Namespace + ".svc"
	return net.JoinHostPort(host, strconv.Itoa(int(port))), host, nil
}

// checkServedCert fetches the certificate the webhook serves and verifies
// it with the configuration's caBundle, for the name the API server dials.
// A Service not reachable from here (check run outside the cluster) is
// left to the probe: the API server verifies the same chain.
func (c *installCheck) checkServedCert(ctx context.Context, w *admissionregistrationv1.MutatingWebhook, obj string) bool {
	addr, name, err := address(w)
	if err != nil {
		c.result.unread(obj, err)
		return true
	}
	d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: dialTimeout}, Config: &tls.Config{
		InsecureSkipVerify: true, //nolint:gosec // verified below, against the caBundle, as the API server does
		ServerName:         name, MinVersion: tls.VersionTLS12,
	}}
	dctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	conn, err := d.DialContext(dctx, "tcp", addr)
	if err != nil {
		if w.ClientConfig.Service != nil {
			c.result.Notes = append(c.result.Notes, fmt.Sprintf("the served certificate was not read: %s is not reachable from here (%s); the dry-run probe checks it through the API server", addr, shortErr(err)))
			return true
		}
		c.result.add(CodeWebhookUnreachable, SeverityError, obj, "start the webhook serving at "+*w.ClientConfig.URL,
			"the webhook at %s does not answer (%s): every write of a singleton Deployment is refused", *w.ClientConfig.URL, shortErr(err))
		return false
	}
	certs := conn.(*tls.Conn).ConnectionState().PeerCertificates
	conn.Close()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(w.ClientConfig.CABundle) {
		c.result.add(CodeCABundleMismatch, SeverityError, obj, c.caFix(), "the caBundle of entry %s holds no certificate: the API server trusts nothing the webhook serves", w.Name)
		return false
	}
	inter := x509.NewCertPool()
	for _, ic := range certs[1:] {
		inter.AddCert(ic)
	}
	leaf := certs[0]
	if _, err := leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: pool, Intermediates: inter}); err != nil {
		c.result.add(CodeCABundleMismatch, SeverityError, obj, c.caFix(),
			"the caBundle of entry %s does not verify the certificate served at %s (%v): the API server refuses every singleton write", w.Name, addr, err)
		return false
	}
	// A short-lived certificate (a local self-signed one lives a week) is
	// judged against a third of its lifetime: cert-manager renews at two
	// thirds by default.
	limit := min(c.in.CertMinRemaining, leaf.NotAfter.Sub(leaf.NotBefore)/3)
	if left := time.Until(leaf.NotAfter); left < limit {
		c.result.add(CodeServingCertExpiring, SeverityWarning, obj,
			fmt.Sprintf("cmctl renew -n %s %s-serving  # or delete its Secret; then check cert-manager's logs", c.in.Namespace, c.in.Deployment),
			"the served certificate ends in %s (%s): cert-manager should have renewed it", roundMinutes(left), leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	return true
}

// caFix makes cainjector write the caBundle again.
func (c *installCheck) caFix() string {
	return fmt.Sprintf("kubectl annotate mutatingwebhookconfiguration %s cert-manager.io/inject-ca-from=%s/%s-serving --overwrite  # cainjector rewrites caBundle",
		c.in.WebhookConfiguration, c.in.Namespace, c.in.Deployment)
}

func roundMinutes(d time.Duration) string { return d.Round(time.Minute).String() }

// probe creates a singleton Deployment in dry-run: the API server must
// answer with it mutated (1 replica).
func (c *installCheck) probe(ctx context.Context, obj string) {
	got, err := c.cs.AppsV1().Deployments(c.in.ProbeNamespace).Create(ctx, probeDeployment(c.in.ProbeNamespace), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	fix := fmt.Sprintf("kubectl get mutatingwebhookconfiguration %s -o yaml; kubectl -n %s logs deployment/%s", c.in.WebhookConfiguration, c.in.Namespace, c.in.Deployment)
	switch {
	case err != nil && (strings.Contains(err.Error(), "x509") || strings.Contains(err.Error(), "certificate")):
		c.result.add(CodeCABundleMismatch, SeverityError, obj, c.caFix(), "the API server does not trust the webhook's certificate: %s", shortErr(err))
	case apierrors.IsForbidden(err) && !strings.Contains(err.Error(), "admission webhook"):
		c.result.unread("a dry-run create of a Deployment in namespace "+c.in.ProbeNamespace+" (needs create on deployments; --probe-namespace)", err)
	case err != nil:
		c.result.add(CodeProbeNotMutated, SeverityError, obj, fix, "a dry-run create of a singleton Deployment in %s was refused: %s", c.in.ProbeNamespace, shortErr(err))
	case got.Spec.Replicas == nil || *got.Spec.Replicas != 1:
		c.result.add(CodeProbeNotMutated, SeverityError, obj, fix,
			"a dry-run create of a singleton Deployment asking for 2 replicas in %s came back unmutated: the webhook is not called there", c.in.ProbeNamespace)
	}
}

// probeDeployment is a singleton asking for 2 replicas.
func probeDeployment(ns string) *appsv1.Deployment {
	two := int32(2)
	labels := map[string]string{"app": "singleton-webhook-check"}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "singleton-webhook-check", Namespace: ns, Annotations: map[string]string{patches.AnnotationSingleton: "true"}},
		Spec: appsv1.DeploymentSpec{Replicas: &two, Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "probe", Image: "registry.k8s.io/pause:3.10"}}}}},
	}
}
