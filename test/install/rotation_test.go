//go:build integration

package install

import (
	"bytes"
	"context"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/singleton-webhook/singleton-webhook/internal/certmanager"
	"github.com/singleton-webhook/singleton-webhook/internal/testenv"
)

// rotateUnderLoad renews the serving certificate `rotations` times while the
// load runs, and checks each time that a new certificate (new serial, new
// key) is served, that the caBundle did not change, and that admissions
// succeed against it. No admission may fail.
func rotateUnderLoad(ctx context.Context, t *testing.T, env *testenv.Env, cm *certmanager.CertManager, certDir projector, caPEM []byte, sec *corev1.Secret) {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(env.WebhookPort))
	if _, err := env.Clientset.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: loadNamespace}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	first, err := servedSerial(addr, caPEM)
	if err != nil {
		t.Fatal(err)
	}
	serials := []*big.Int{first}
	t.Logf("initial certificate: serial %x", first)
	l := &load{cs: env.Clientset}
	stop := l.run(ctx, loadWorkers)
	defer stop()
	waitAdmissions(ctx, t, l, 0)
	began := time.Now()
	for r := 1; r <= rotations; r++ {
		rotStart := time.Now()
		if err := certmanager.Renew(ctx, cm.Client, systemNamespace, servingCert); err != nil {
			t.Fatal(err)
		}
		next := waitIssued(ctx, t, env, cm, r+1)
		issuedIn := time.Since(rotStart)
		if bytes.Equal(next.Data["tls.key"], sec.Data["tls.key"]) {
			t.Errorf("renewal %d kept the private key; rotationPolicy Always should replace it", r)
		}
		if err := certDir.write(next.Data); err != nil {
			t.Fatal(err)
		}
		want, err := leaf(next.Data["tls.crt"])
		if err != nil {
			t.Fatal(err)
		}
		waitServed(ctx, t, addr, caPEM, want.SerialNumber)
		l.epoch.Store(int64(r))
		servedIn := time.Since(rotStart)
		waitAdmissions(ctx, t, l, r)
		checkCABundle(ctx, t, env, caPEM)
		t.Logf("renewal %d: issued in %s, served in %s, serial %x", r, issuedIn.Round(time.Millisecond), servedIn.Round(time.Millisecond), want.SerialNumber)
		serials = append(serials, want.SerialNumber)
		sec = next
	}
	stop()
	elapsed := time.Since(began)
	perEpoch := make([]int64, len(l.perEpoch))
	for i := range l.perEpoch {
		perEpoch[i] = l.perEpoch[i].Load()
	}
	t.Logf("load: %d admissions succeeded, %d failed, over %s with %d workers; per certificate %v",
		l.ok.Load(), l.failed.Load(), elapsed.Round(time.Millisecond), loadWorkers, perEpoch)
	if n := l.failed.Load(); n > 0 {
		t.Errorf("%d admissions failed during rotation; first: %q", n, l.failures)
	}
	checkDistinct(t, serials)
}

// waitServed waits until the server presents the certificate with serial.
func waitServed(ctx context.Context, t *testing.T, addr string, caPEM []byte, serial *big.Int) {
	t.Helper()
	var last any
	err := wait.PollUntilContextTimeout(ctx, poll, reloadTimeout, true, func(context.Context) (bool, error) {
		got, err := servedSerial(addr, caPEM)
		if err != nil {
			last = err
			return false, nil
		}
		last = got
		return got.Cmp(serial) == 0, nil
	})
	if err != nil {
		t.Fatalf("the webhook does not serve the renewed certificate %x: %v (last served: %v)", serial, err, last)
	}
}

// waitAdmissions waits until minPerEpoch admissions succeeded in epoch.
func waitAdmissions(ctx context.Context, t *testing.T, l *load, epoch int) {
	t.Helper()
	err := wait.PollUntilContextTimeout(ctx, poll, time.Minute, true, func(context.Context) (bool, error) {
		return l.perEpoch[epoch].Load() >= minPerEpoch || l.failed.Load() > 0, nil
	})
	if err != nil {
		t.Fatalf("only %d admissions with certificate %d: %v", l.perEpoch[epoch].Load(), epoch, err)
	}
}

// checkCABundle checks that the caBundle is still the CA: a renewal of the
// serving certificate must not touch what the API server trusts.
func checkCABundle(ctx context.Context, t *testing.T, env *testenv.Env, caPEM []byte) {
	t.Helper()
	c, err := env.Clientset.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, webhookConfig, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range c.Webhooks {
		if !bytes.Equal(w.ClientConfig.CABundle, caPEM) {
			t.Errorf("webhook %s: caBundle changed during a rotation", w.Name)
		}
	}
}

// checkUntrustedRefused is the control experiment: the webhook now serves a
// certificate from another CA (Env.CertDir's), and the API server, which
// trusts only the injected CA, must refuse to talk to it. It shows that the
// admissions above succeeded because TLS was verified, not in spite of it.
//
// The API server may still hold a few connections made with the previous
// certificate and never used: stopping the load cancels admissions whose
// connection was being dialled, and Go's HTTP client keeps such a
// connection idle. Each is used once (every response closes its
// connection), so the first refusal shows the pool is drained; every
// request after it must be refused too.
func checkUntrustedRefused(ctx context.Context, t *testing.T, env *testenv.Env, certDir projector) {
	t.Helper()
	data := map[string][]byte{}
	for _, k := range servingKeys() {
		b, err := os.ReadFile(filepath.Join(env.CertDir, k))
		if err != nil {
			t.Fatal(err)
		}
		data[k] = b
	}
	other, err := leaf(data["tls.crt"])
	if err != nil {
		t.Fatal(err)
	}
	if err := certDir.write(data); err != nil {
		t.Fatal(err)
	}
	waitServed(ctx, t, net.JoinHostPort("127.0.0.1", strconv.Itoa(env.WebhookPort)), env.CABundle, other.SerialNumber)
	api := env.Clientset.AppsV1().Deployments(loadNamespace)
	dryRun := metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}
	const attempts, after = 20, 5
	stale, refused := 0, 0
	for i := 0; i < attempts && refused < after; i++ {
		_, err := api.Create(ctx, loadDeployment("untrusted"), dryRun)
		switch {
		case err != nil && strings.Contains(err.Error(), "x509"):
			refused++
		case err != nil:
			t.Fatalf("dry-run create with an untrusted webhook certificate: %v, want an x509 verification failure", err)
		case refused > 0:
			t.Fatalf("the API server accepted a singleton Deployment after refusing the untrusted certificate")
		default:
			stale++
		}
	}
	if refused < after {
		t.Fatalf("the API server accepted %d singleton Deployments while the webhook served a certificate of an untrusted CA", stale)
	}
	t.Logf("untrusted certificate refused by the API server (%d admissions first used idle connections made before the switch)", stale)
}

func checkDistinct(t *testing.T, serials []*big.Int) {
	t.Helper()
	seen := map[string]bool{}
	for i, s := range serials {
		if seen[s.String()] {
			t.Errorf("certificate %d has serial %x, served before: the serial must change at every renewal", i, s)
		}
		seen[s.String()] = true
	}
	if len(serials) != rotations+1 {
		t.Errorf("saw %d certificates, want %d (initial + %d renewals)", len(serials), rotations+1, rotations)
	}
}
