//go:build integration

package install

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	ctrlwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"

	"github.com/singleton-webhook/singleton-webhook/internal/certmanager"
	"github.com/singleton-webhook/singleton-webhook/internal/testenv"
)

// Names from manifests/certificates.yaml and mutatingwebhook.yaml.
const (
	systemNamespace = "singleton-system"
	servingCert     = "singleton-webhook-serving"
	servingSecret   = "singleton-webhook-serving-cert"
	caSecret        = "singleton-webhook-ca"
	webhookConfig   = "singleton-webhook"
)

// Bounds of the waits; generous for a loaded 2-core machine.
const (
	issueTimeout  = time.Minute
	reloadTimeout = 30 * time.Second
	poll          = 50 * time.Millisecond
	loadWorkers   = 4
	// minPerEpoch admissions must succeed against each renewed certificate
	// before the next renewal.
	minPerEpoch = 50
)

// TestCertManagerTLSRotatesUnderLoad installs our Issuers and Certificates
// with the real cert-manager running, serves the issued certificate the way
// the Deployment does, lets cainjector fill the webhook configuration's
// caBundle, and then renews the serving certificate three times while
// singleton Deployments are written through the API server.
func TestCertManagerTLSRotatesUnderLoad(t *testing.T) {
	start := time.Now()
	crds, err := certmanager.CRDDir()
	if err != nil {
		t.Fatal(err)
	}
	env := testenv.Start(t, testenv.Options{CRDDirectoryPaths: []string{crds}, SkipWebhookConfiguration: true})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cm := startCertManager(ctx, t, env.Kubeconfig)
	t.Logf("control plane and cert-manager up in %s", time.Since(start).Round(time.Millisecond))

	in := renderInstall(t)
	if _, _, err := env.Kubectl(t, localInstall(t, in), "apply", "--server-side", "-f", "-"); err != nil {
		t.Fatalf("apply the install: %v", err)
	}
	issued := time.Now()
	sec := waitIssued(ctx, t, env, cm, 1)
	t.Logf("serving certificate issued %s after apply", time.Since(issued).Round(time.Millisecond))
	caPEM := checkIssued(ctx, t, env, sec)

	certDir := projector{dir: t.TempDir()}
	if err := certDir.write(sec.Data); err != nil {
		t.Fatal(err)
	}
	env.InstallWebhookConfiguration(t, nil) // cainjector fills caBundle
	waitInjected(ctx, t, env, caPEM)

	env.StartWebhook(t, testenv.WebhookOptions{
		CertDir:    certDir.dir,
		WrapServer: func(srv ctrlwebhook.Server) ctrlwebhook.Server { return closingServer{srv} },
	})
	if err := testenv.WaitForMutation(ctx, env.Config); err != nil {
		t.Fatalf("the API server does not reach the webhook over the issued certificate: %v", err)
	}
	rotateUnderLoad(ctx, t, env, cm, certDir, caPEM, sec)
	checkUntrustedRefused(ctx, t, env, certDir)
	t.Logf("test took %s", time.Since(start).Round(time.Millisecond))
}

// localInstall is the rendered install as this test applies it, without a
// Service network and a cainjector-free API server path:
//   - the MutatingWebhookConfiguration is left out: the test installs it
//     with its clientConfig rewritten to the local URL
//     (Env.InstallWebhookConfiguration), keeping the inject-ca-from
//     annotation so cainjector fills caBundle;
//   - the serving Certificate also names 127.0.0.1 and localhost, the
//     address the API server calls (a test-only patch: in a cluster the
//     Service DNS names are the address).
func localInstall(t *testing.T, in *install) string {
	t.Helper()
	var objs []*unstructured.Unstructured
	for _, o := range in.objects {
		if o.GetKind() == "MutatingWebhookConfiguration" {
			continue
		}
		o = o.DeepCopy()
		if o.GetKind() == "Certificate" && o.GetName() == servingCert {
			dns, _, _ := unstructured.NestedStringSlice(o.Object, "spec", "dnsNames")
			if err := unstructured.SetNestedStringSlice(o.Object, append(dns, "localhost"), "spec", "dnsNames"); err != nil {
				t.Fatal(err)
			}
			if err := unstructured.SetNestedStringSlice(o.Object, []string{"127.0.0.1"}, "spec", "ipAddresses"); err != nil {
				t.Fatal(err)
			}
		}
		objs = append(objs, o)
	}
	return encode(t, objs)
}

// startCertManager runs the real cert-manager controllers and cainjector in
// this process against the API server of kubeconfig until the test ends.
func startCertManager(ctx context.Context, t *testing.T, kubeconfig string) *certmanager.CertManager {
	t.Helper()
	cm, err := certmanager.Start(ctx, certmanager.Options{Kubeconfig: kubeconfig})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := cm.Stop(); err != nil {
			t.Errorf("cert-manager: %v", err)
		}
	})
	return cm
}

// waitIssued waits until the serving Certificate is Ready at revision (and
// no longer Issuing), and returns its Secret.
func waitIssued(ctx context.Context, t *testing.T, env *testenv.Env, cm *certmanager.CertManager, revision int) *corev1.Secret {
	t.Helper()
	var last string
	err := wait.PollUntilContextTimeout(ctx, poll, issueTimeout, true, func(ctx context.Context) (bool, error) {
		crt, err := cm.Client.CertmanagerV1().Certificates(systemNamespace).Get(ctx, servingCert, metav1.GetOptions{})
		if err != nil {
			last = err.Error()
			return false, nil
		}
		last = fmt.Sprintf("revision %v, conditions %+v", crt.Status.Revision, crt.Status.Conditions)
		return crt.Status.Revision != nil && *crt.Status.Revision == revision && ready(crt), nil
	})
	if err != nil {
		t.Fatalf("certificate %s not issued at revision %d: %v (last: %s)", servingCert, revision, err, last)
	}
	sec, err := env.Clientset.CoreV1().Secrets(systemNamespace).Get(ctx, servingSecret, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get the serving Secret: %v", err)
	}
	return sec
}

func ready(crt *cmapi.Certificate) bool {
	isReady, issuing := false, false
	for _, c := range crt.Status.Conditions {
		switch c.Type {
		case cmapi.CertificateConditionReady:
			isReady = c.Status == cmmeta.ConditionTrue && c.ObservedGeneration == crt.Generation
		case cmapi.CertificateConditionIssuing:
			issuing = c.Status == cmmeta.ConditionTrue
		}
	}
	return isReady && !issuing
}

// checkIssued checks the chain the manifests promise: the Secret's ca.crt is
// our CA (not the leaf), the leaf is signed by it for the Service names, with
// an ECDSA key. It returns the CA certificate, PEM.
func checkIssued(ctx context.Context, t *testing.T, env *testenv.Env, sec *corev1.Secret) []byte {
	t.Helper()
	ca, err := env.Clientset.CoreV1().Secrets(systemNamespace).Get(ctx, caSecret, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get the CA Secret: %v", err)
	}
	caPEM := sec.Data["ca.crt"]
	if !bytes.Equal(caPEM, ca.Data["tls.crt"]) {
		t.Fatalf("ca.crt of %s is not the certificate of CA %s: cainjector would inject the wrong CA", servingSecret, caSecret)
	}
	crt, err := leaf(sec.Data["tls.crt"])
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(caPEM)
	for _, name := range []string{"singleton-webhook.singleton-system.svc", "singleton-webhook.singleton-system.svc.cluster.local"} {
		if _, err := crt.Verify(x509.VerifyOptions{DNSName: name, Roots: roots}); err != nil {
			t.Errorf("serving certificate does not verify for %s against the CA: %v", name, err)
		}
	}
	if _, ok := crt.PublicKey.(*ecdsa.PublicKey); !ok {
		t.Errorf("serving key is %T, want ECDSA", crt.PublicKey)
	}
	return caPEM
}

// waitInjected waits until cainjector has set every caBundle of the webhook
// configuration to the CA.
func waitInjected(ctx context.Context, t *testing.T, env *testenv.Env, caPEM []byte) {
	t.Helper()
	api := env.Clientset.AdmissionregistrationV1().MutatingWebhookConfigurations()
	err := wait.PollUntilContextTimeout(ctx, poll, issueTimeout, true, func(ctx context.Context) (bool, error) {
		c, err := api.Get(ctx, webhookConfig, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		for _, w := range c.Webhooks {
			if !bytes.Equal(w.ClientConfig.CABundle, caPEM) {
				return false, nil
			}
		}
		return len(c.Webhooks) > 0, nil
	})
	if err != nil {
		t.Fatalf("cainjector did not inject the CA into %s: %v", webhookConfig, err)
	}
}
