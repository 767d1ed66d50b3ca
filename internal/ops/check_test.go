package ops

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/utils/ptr"

	"github.com/singleton-webhook/singleton-webhook/certs"
	"github.com/singleton-webhook/singleton-webhook/patches"
)

var testInstall = Install{Namespace: "singleton-system", WebhookConfiguration: "singleton-webhook", Deployment: "singleton-webhook",
	LeaderLease: "singleton-webhook.singleton.dev", ProbeNamespace: "default", CertMinRemaining: time.Hour}

// serveTLS serves a self-signed certificate on loopback until the test
// ends and returns its URL and CA.
func serveTLS(t *testing.T) (string, []byte) {
	t.Helper()
	ss, err := certs.NewSelfSigned([]string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	return serveCert(t, &ss.Certificate), ss.CAPEM
}

// endingCert is a self-signed certificate for 127.0.0.1 that lived 23
// hours and has one left, and its PEM (its own CA).
func endingCert(t *testing.T) (*tls.Certificate, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ending"},
		NotBefore: time.Now().Add(-23 * time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// serveCert serves cert on loopback until the test ends and returns the
// webhook URL there.
func serveCert(t *testing.T, cert *tls.Certificate) string {
	t.Helper()
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{*cert}, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			_ = c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()
	return "https://" + l.Addr().String() + "/mutate-apps-v1-deployment"
}

// webhookConfig is the install's configuration pointing at url.
func webhookConfig(url string, ca []byte) *admissionregistrationv1.MutatingWebhookConfiguration {
	return &admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "singleton-webhook"},
		Webhooks: []admissionregistrationv1.MutatingWebhook{{Name: "deployments.singleton.dev",
			ClientConfig: admissionregistrationv1.WebhookClientConfig{URL: &url, CABundle: ca},
			Rules:        []admissionregistrationv1.RuleWithOperations{{Rule: admissionregistrationv1.Rule{Resources: []string{"deployments"}}}},
			NamespaceSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
				{Key: "singleton.dev/webhook", Operator: metav1.LabelSelectorOpNotIn, Values: []string{"disabled"}}}},
		}},
	}
}

// mutatingClientset is a fake clientset whose dry-run creates of Deployments
// come back with 1 replica, as through the webhook.
func mutatingClientset(objs ...runtime.Object) *fake.Clientset {
	cs := fake.NewClientset(objs...)
	cs.PrependReactor("create", "deployments", func(a k8stesting.Action) (bool, runtime.Object, error) {
		d := a.(k8stesting.CreateAction).GetObject().(*appsv1.Deployment).DeepCopy()
		d.Spec.Replicas = ptr.To(int32(1))
		return true, d, nil
	})
	return cs
}

// codes runs check at t0 and returns "CODE object" per finding.
func codes(t *testing.T, cs *fake.Clientset, in Install) []string {
	t.Helper()
	r, err := checkAt(context.Background(), cs, Scope{AllNamespaces: true}, in, t0)
	if err != nil {
		t.Fatalf("check: %v", err)
	}
	var out []string
	for _, f := range r.Findings {
		if f.Cause == "" || f.Fix == "" || f.Name == "" || strings.Contains(f.Cause, "\n") {
			t.Errorf("finding without a one-line cause, a fix or a name: %+v", f)
		}
		out = append(out, f.Code+" "+f.Object)
	}
	if r.OK != (len(out) == 0 && !r.Partial) {
		t.Errorf("ok %v with findings %v", r.OK, out)
	}
	return out
}

func TestCheckInstall(t *testing.T) {
	url, ca := serveTLS(t)
	_, otherCA := serveTLS(t)
	ns := func(name string, l map[string]string) *corev1.Namespace {
		return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: l}}
	}
	stale := lease("singleton-system", "singleton-webhook.singleton.dev", "webhook-1", -time.Hour, false)
	dead := "https://127.0.0.1:1/mutate-apps-v1-deployment"
	ending, endingCA := endingCert(t)
	endingURL := serveCert(t, ending)
	for name, tc := range map[string]struct {
		objs []runtime.Object
		in   func(*Install)
		want string
	}{
		"a healthy install has no finding":                     {objs: []runtime.Object{webhookConfig(url, ca)}},
		"no webhook configuration":                             {want: "SW101 mutatingwebhookconfiguration/singleton-webhook"},
		"a caBundle of another CA":                             {objs: []runtime.Object{webhookConfig(url, otherCA)}, want: "SW102 mutatingwebhookconfiguration/singleton-webhook"},
		"nobody at the webhook's URL":                          {objs: []runtime.Object{webhookConfig(dead, ca)}, want: "SW103 mutatingwebhookconfiguration/singleton-webhook"},
		"a served certificate in the last third of its life":   {objs: []runtime.Object{webhookConfig(endingURL, endingCA)}, want: "SW106 mutatingwebhookconfiguration/singleton-webhook"},
		"a controllers' Lease not renewed for an hour":         {objs: []runtime.Object{webhookConfig(url, ca), stale}, want: "SW107 lease/singleton-system/singleton-webhook.singleton.dev"},
		"a singleton in an opted-out namespace":                {objs: []runtime.Object{webhookConfig(url, ca), ns("legacy", map[string]string{"singleton.dev/webhook": "disabled"}), deployment("legacy", "cron", patches.ModeReplicas, false)}, want: "SW208 deployment/legacy/cron"},
		"a singleton in a namespace where the webhook applies": {objs: []runtime.Object{webhookConfig(url, ca), ns("shop", nil), deployment("shop", "cart", patches.ModeReplicas, true)}},
	} {
		t.Run(name, func(t *testing.T) {
			in := testInstall
			if tc.in != nil {
				tc.in(&in)
			}
			got := strings.Join(codes(t, mutatingClientset(tc.objs...), in), "; ")
			if got != tc.want {
				t.Errorf("findings %q, want %q", got, tc.want)
			}
		})
	}
}

func TestCheckAProbeNotMutated(t *testing.T) {
	url, ca := serveTLS(t)
	got := codes(t, fake.NewClientset(webhookConfig(url, ca)), testInstall)
	if strings.Join(got, ";") != "SW105 mutatingwebhookconfiguration/singleton-webhook" {
		t.Errorf("findings %q", got)
	}
}

func TestCheckSingletons(t *testing.T) {
	url, ca := serveTLS(t)
	rep := deployment("shop", "cart", patches.ModeReplicas, true)
	two := deployment("shop", "twice", patches.ModeReplicas, true)
	pinned := deployment("shop", "pinned", patches.ModeReplicas, true)
	pinned.Spec.Template.Spec.NodeName = "node-1"
	el := deployment("shop", "billing", patches.ModeElection, true)
	stuck := deployment("shop", "stuck", patches.ModeElection, true)
	foreign := deployment("shop", "foreign", patches.ModeElection, true)
	webhookDeploy := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "singleton-system", Name: "singleton-webhook"},
		Spec: appsv1.DeploymentSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{
			{Name: "webhook", Image: "ghcr.io/singleton-webhook/singleton-webhook:v1.3.0"}}}}}}
	billingA, billingB := pod(el, "billing-a", "node-1", -30*time.Minute, false), pod(el, "billing-b", "node-2", -30*time.Minute, false)
	billingB.Labels[patches.RoleLabel] = patches.RoleLeader
	objs := []runtime.Object{
		webhookConfig(url, ca), webhookDeploy,
		rep, deleting(pod(rep, "cart-old", "node-1", -20*time.Minute, false), -5*time.Minute), pod(rep, "cart-new", "", -6*time.Minute, true),
		two, pod(two, "twice-a", "node-1", -time.Hour, false), pod(two, "twice-b", "node-2", -time.Hour, false),
		pinned,
		deployment("shop", "legacy", patches.ModeReplicas, false),
		el, billingA, billingB, lease("shop", "billing", "billing-a", -3*time.Second, true),
		stuck, pod(stuck, "stuck-a", "node-1", -time.Hour, false), lease("shop", "stuck", "stuck-gone", -5*time.Minute, true),
		foreign, pod(foreign, "foreign-a", "node-1", -time.Hour, false), lease("shop", "foreign", "foreign-a", -time.Second, false),
	}
	got := codes(t, mutatingClientset(objs...), testInstall)
	want := []string{
		"SW201 deployment/shop/twice",
		"SW202 deployment/shop/cart",
		"SW203 deployment/shop/stuck",
		"SW204 deployment/shop/billing",
		"SW204 deployment/shop/billing",
		"SW204 deployment/shop/foreign",
		"SW205 deployment/shop/billing",
		"SW205 deployment/shop/foreign",
		"SW205 deployment/shop/stuck",
		"SW206 deployment/shop/foreign",
		"SW207 deployment/shop/pinned",
		"SW209 deployment/shop/legacy",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("findings\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestCheckJSONIsTheDocumentedSchema(t *testing.T) {
	r := &CheckResult{APIVersion: CheckAPIVersion, Kind: CheckKind, Errors: []string{}, Notes: []string{}}
	r.add(CodeGateOverdue, SeverityError, "deployment/shop/cart", "kubectl ...", "Pod %s waits", "cart-new")
	var b bytes.Buffer
	if err := WriteCheck(&b, r, OutputJSON); err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(&b)
	dec.DisallowUnknownFields()
	var back CheckResult
	if err := dec.Decode(&back); err != nil || back.Findings[0].Name != "GateOverdue" || back.APIVersion != "check.singleton.dev/v1" {
		t.Errorf("decode: %v %+v", err, back)
	}
	assertDocumented(t, CheckAPIVersion, CheckResult{})
	doc, err := os.ReadFile("../../docs/status-check.md")
	if err != nil {
		t.Fatal(err)
	}
	for code, name := range codeNames {
		if !strings.Contains(string(doc), "`"+code+"` "+name) {
			t.Errorf("code %s (%s) is not documented in docs/status-check.md as \"`%s` %s\"", code, name, code, name)
		}
	}
}
