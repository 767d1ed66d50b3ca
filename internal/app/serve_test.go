package app

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/singleton-webhook/singleton-webhook/certs"
	"github.com/singleton-webhook/singleton-webhook/internal/testutil"
	"github.com/singleton-webhook/singleton-webhook/webhook"
)

// served is a `serve --standalone` running in-process.
type served struct {
	webhook, probes, metrics string // host:port
	roots                    *x509.CertPool
	stop                     context.CancelFunc
	done                     chan error
	stderr                   *testutil.SyncBuffer
}

// startServed runs serve --standalone with args added and waits until it
// is ready. Without --webhook-cert-path it serves a self-signed
// certificate. The test fails if serve does not stop cleanly at its end,
// unless the test stopped it itself.
func startServed(t *testing.T, args ...string) *served {
	t.Helper()
	s := &served{probes: testutil.FreeAddr(t), metrics: testutil.FreeAddr(t), stderr: &testutil.SyncBuffer{}}
	port := strconv.Itoa(testutil.FreePort(t))
	s.webhook = "127.0.0.1:" + port
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	all := []string{"--standalone", "--webhook-port", port,
		"--health-probe-bind-address", s.probes, "--metrics-bind-address", s.metrics, "--metrics-secure=false"}
	selfSigned := true
	for _, a := range args {
		if a == "--webhook-cert-path" {
			selfSigned = false
		}
	}
	if selfSigned {
		all = append(all, "--self-signed", "--self-signed-ca-out", caFile)
	}
	all = append(all, args...)
	ctx, cancel := context.WithCancel(context.Background())
	s.stop, s.done = cancel, make(chan error, 1)
	go func() { s.done <- Serve(ctx, testutil.TestVersion, all, s.stderr) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err, ok := <-s.done:
			if ok && err != nil {
				t.Errorf("serve returned %v\n%s", err, s.stderr)
			}
		case <-time.After(30 * time.Second):
			t.Error("serve did not stop within 30s")
		}
	})
	if selfSigned {
		s.waitReady(t)
		pem, err := os.ReadFile(caFile)
		if err != nil {
			t.Fatal(err)
		}
		s.roots = x509.NewCertPool()
		s.roots.AppendCertsFromPEM(pem)
	}
	return s
}

// readyz returns the status and body of /readyz?verbose.
func (s *served) readyz() (int, string) {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + s.probes + "/readyz?verbose")
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (s *served) waitReady(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case err := <-s.done:
			close(s.done)
			t.Fatalf("serve stopped: %v\n%s", err, s.stderr)
		default:
		}
		code, body := s.readyz()
		if code == http.StatusOK {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve not ready within 60s: %d %s\n%s", code, body, s.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// tlsClient is a client trusting the server's CA, with cfg's settings.
func (s *served) tlsClient(cfg *tls.Config) *http.Client {
	cfg.RootCAs = s.roots
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
}

// handshake dials the webhook port with cfg and returns the connection state.
func (s *served) handshake(cfg *tls.Config) (tls.ConnectionState, error) {
	cfg.RootCAs = s.roots
	cfg.ServerName = "127.0.0.1"
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", s.webhook, cfg)
	if err != nil {
		return tls.ConnectionState{}, err
	}
	defer conn.Close()
	return conn.ConnectionState(), nil
}

func TestServeTLSVersions(t *testing.T) {
	def := startServed(t)
	tls12 := startServed(t, "--tls-min-version=1.2")
	cbc := []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA}
	tests := map[string]struct {
		server  *served
		client  *tls.Config
		want    uint16 // negotiated version; 0: refused
		wantErr string
	}{
		"TLS 1.1 is refused by default": {server: def, client: &tls.Config{MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}, wantErr: "protocol version not supported"},
		"TLS 1.2 is refused by default": {server: def, client: &tls.Config{MaxVersion: tls.VersionTLS12}, wantErr: "protocol version not supported"},
		"TLS 1.3 is served by default":  {server: def, client: &tls.Config{}, want: tls.VersionTLS13},
		"TLS 1.1 is refused with 1.2":   {server: tls12, client: &tls.Config{MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}, wantErr: "protocol version not supported"},
		"TLS 1.2 is served with 1.2":    {server: tls12, client: &tls.Config{MaxVersion: tls.VersionTLS12}, want: tls.VersionTLS12},
		"TLS 1.2 CBC suites are refused with 1.2": {server: tls12,
			client: &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: cbc}, wantErr: "handshake failure"},
		"TLS 1.3 is served with 1.2": {server: tls12, client: &tls.Config{}, want: tls.VersionTLS13},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			st, err := tc.server.handshake(tc.client)
			if tc.want == 0 {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("handshake error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("handshake: %v", err)
			}
			if st.Version != tc.want {
				t.Errorf("negotiated %s, want %s", tls.VersionName(st.Version), tls.VersionName(tc.want))
			}
			if st.Version == tls.VersionTLS12 && !strings.Contains(tls.CipherSuiteName(st.CipherSuite), "ECDHE") {
				t.Errorf("cipher %s, want ECDHE with AEAD", tls.CipherSuiteName(st.CipherSuite))
			}
		})
	}
}

func TestServeHTTP2(t *testing.T) {
	off := startServed(t)
	on := startServed(t, "--enable-http2")
	if _, err := off.handshake(&tls.Config{NextProtos: []string{"h2"}}); err == nil ||
		!strings.Contains(err.Error(), "no application protocol") {
		t.Errorf("h2-only client with HTTP/2 off: %v, want the handshake refused", err)
	}
	if st, err := off.handshake(&tls.Config{NextProtos: []string{"h2", "http/1.1"}}); err != nil || st.NegotiatedProtocol != "http/1.1" {
		t.Errorf("h2-or-http/1.1 client with HTTP/2 off: %q, %v; want http/1.1", st.NegotiatedProtocol, err)
	}
	if st, err := on.handshake(&tls.Config{NextProtos: []string{"h2"}}); err != nil || st.NegotiatedProtocol != "h2" {
		t.Errorf("h2-only client with --enable-http2: %q, %v; want h2", st.NegotiatedProtocol, err)
	}
	// An HTTP/2 request really is served over h2 when enabled.
	c := on.tlsClient(&tls.Config{})
	c.Transport.(*http.Transport).ForceAttemptHTTP2 = true
	resp, err := c.Post("https://"+on.webhook+webhook.DeploymentPath, "application/json", strings.NewReader(serveReviewBody(t, "CREATE", `{}`)))
	if err != nil {
		t.Fatalf("POST over h2: %v", err)
	}
	resp.Body.Close()
	if resp.ProtoMajor != 2 || resp.StatusCode != http.StatusOK {
		t.Errorf("answer %s %d, want HTTP/2.0 200", resp.Proto, resp.StatusCode)
	}
}

// serveReviewBody is an AdmissionReview of a Deployment with the given
// operation and object.
func serveReviewBody(t *testing.T, op, object string) string {
	t.Helper()
	return fmt.Sprintf(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u-%s",`+
		`"kind":{"group":"apps","version":"v1","kind":"Deployment"},`+
		`"resource":{"group":"apps","version":"v1","resource":"deployments"},`+
		`"name":"app","namespace":"default","operation":%q,"object":%s}}`, op, op, object)
}

const singletonObject = `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"app","namespace":"default",` +
	`"annotations":{"singleton":"true"}},"spec":{"replicas":3}}`

func TestServeIsReadyOnlyWithAValidCertificate(t *testing.T) {
	dir := t.TempDir()
	s := startServed(t, "--webhook-cert-path", dir)
	waitReadyz := func(want int, contains string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			code, body := s.readyz()
			if code == want && strings.Contains(body, contains) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("/readyz %d %q; want %d containing %q", code, body, want, contains)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitReadyz(http.StatusInternalServerError, "[-]serving-cert failed")
	if err := os.WriteFile(filepath.Join(dir, "tls.crt"), []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tls.key"), []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	waitReadyz(http.StatusInternalServerError, "[-]webhook failed")
	ss, err := certs.NewSelfSigned([]string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tls.key"), ss.KeyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tls.crt"), ss.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	waitReadyz(http.StatusOK, "[+]serving-cert ok")
	s.roots = x509.NewCertPool()
	s.roots.AppendCertsFromPEM(ss.CAPEM)
	if _, err := s.handshake(&tls.Config{}); err != nil {
		t.Errorf("handshake with the certificate of the files: %v", err)
	}
}

func TestServeFlagErrors(t *testing.T) {
	const tlsVersions = `--tls-min-version: TLS version %q is not supported: use 1.2 or 1.3`
	for name, tc := range map[string]struct {
		args []string
		want string
	}{
		"TLS 1.1 is not a minimum":       {[]string{"--tls-min-version=1.1"}, fmt.Sprintf(tlsVersions, "1.1")},
		"TLS 1.0 is not a minimum":       {[]string{"--tls-min-version=1.0"}, fmt.Sprintf(tlsVersions, "1.0")},
		"a zero grace period":            {[]string{"--graceful-shutdown-timeout=0s"}, "--graceful-shutdown-timeout 0s: want a positive duration"},
		"a negative grace period":        {[]string{"--graceful-shutdown-timeout=-1s"}, "--graceful-shutdown-timeout -1s: want a positive duration"},
		"a TLS version in another shape": {[]string{"--tls-min-version=TLS13"}, fmt.Sprintf(tlsVersions, "TLS13")},
		"an unknown controller": {[]string{"--controllers=drift,nope"},
			`--controllers: unknown controller "nope": want some of ` + strings.Join(ControllerNames(), ", ")},
		"a namespace that is no namespace name": {[]string{"--excluded-namespaces=kube-system,Team_A"},
			`--excluded-namespaces: namespace "Team_A": ` + strings.Join(validation.IsDNS1123Label("Team_A"), "; ")},
		"an opt-out without a value": {[]string{"--namespace-opt-out=singleton.dev/webhook"},
			`--namespace-opt-out: "singleton.dev/webhook": want a label key=value, e.g. singleton.dev/webhook=disabled`},
		"an opt-out with an empty value": {[]string{"--namespace-opt-out=singleton.dev/webhook="},
			`--namespace-opt-out: "singleton.dev/webhook=": want a non-empty label value, e.g. singleton.dev/webhook=disabled`},
		"an opt-out key that is no label key": {[]string{"--namespace-opt-out=a b=off"},
			`--namespace-opt-out: label key "a b": ` + strings.Join(validation.IsQualifiedName("a b"), "; ")},
		"secure metrics without a cluster": {[]string{"--metrics-bind-address=127.0.0.1:0", "--metrics-secure"},
			"--standalone has no API server to authenticate scrapes of /metrics: add --metrics-secure=false (plain HTTP, local runs) or --metrics-bind-address=0"},
	} {
		t.Run(name, func(t *testing.T) {
			err := Serve(context.Background(), testutil.TestVersion, append([]string{"--standalone", "--self-signed", "--metrics-secure=false"}, tc.args...), io.Discard)
			var ec *ExitError
			if !errors.As(err, &ec) || ec.Code != 2 {
				t.Errorf("serve %v: %v, want a usage error (exit 2)", tc.args, err)
			}
			if err == nil || err.Error() != tc.want {
				t.Errorf("serve %v: %v, want %s", tc.args, err, tc.want)
			}
		})
	}
}

func TestServeKubeconfigGetsInClusterClientSettings(t *testing.T) {
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	const file = `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:6443"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
`
	if err := os.WriteFile(kubeconfig, []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
	f := &serveFlags{kubeconfig: kubeconfig}
	cfg, err := f.restConfig()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.QPS != defaultClientQPS || cfg.Burst != defaultClientBurst {
		t.Errorf("QPS %v burst %d, want %v and %d", cfg.QPS, cfg.Burst, float32(defaultClientQPS), defaultClientBurst)
	}
	if !cfg.DisableCompression {
		t.Error("serve asks its API server for gzipped responses: a decompressor per watch")
	}
}

func TestServeWithoutAClusterSaysSo(t *testing.T) {
	t.Setenv("KUBECONFIG", "")
	t.Setenv("HOME", t.TempDir())
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	var stderr bytes.Buffer
	err := Serve(context.Background(), testutil.TestVersion, []string{"--self-signed", "--metrics-bind-address=0",
		"--health-probe-bind-address=127.0.0.1:0", "--webhook-port", strconv.Itoa(testutil.FreePort(t))}, &stderr)
	want := "load kubeconfig: no cluster found: pass --kubeconfig, set $KUBECONFIG, run in a Pod, or serve admission only with --standalone"
	if err == nil || err.Error() != want {
		t.Errorf("serve without a cluster: %v, want %s", err, want)
	}
	if stderr.Len() != 0 {
		t.Errorf("serve printed more than its error:\n%s", stderr.String())
	}
}
