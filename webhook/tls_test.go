package webhook

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/singleton-webhook/singleton-webhook/certs"
)

func TestParseTLSVersion(t *testing.T) {
	for in, want := range map[string]uint16{"1.2": tls.VersionTLS12, "1.3": tls.VersionTLS13, "1.1": 0, "1.0": 0, "": 0, "TLS13": 0} {
		got, err := ParseTLSVersion(in)
		if got != want || (err == nil) != (want != 0) {
			t.Errorf("ParseTLSVersion(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
}

func TestTLSOptionsApply(t *testing.T) {
	tests := map[string]struct {
		opts    TLSOptions
		ciphers bool
		protos  []string
	}{
		"TLS 1.3 without HTTP/2":         {opts: TLSOptions{MinVersion: tls.VersionTLS13}, protos: []string{"http/1.1"}},
		"TLS 1.2 restricts its ciphers":  {opts: TLSOptions{MinVersion: tls.VersionTLS12}, ciphers: true, protos: []string{"http/1.1"}},
		"HTTP/2 is offered when enabled": {opts: TLSOptions{MinVersion: tls.VersionTLS13, EnableHTTP2: true}, protos: []string{"h2", "http/1.1"}},
		"a zero version means TLS 1.2":   {opts: TLSOptions{}, ciphers: true, protos: []string{"http/1.1"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c := &tls.Config{NextProtos: []string{"h2"}} // controller-runtime's starting point
			tc.opts.Apply(c)
			if c.MinVersion < tls.VersionTLS12 || (tc.opts.MinVersion != 0 && c.MinVersion != tc.opts.MinVersion) {
				t.Errorf("MinVersion %x", c.MinVersion)
			}
			if !slices.Equal(c.NextProtos, tc.protos) {
				t.Errorf("NextProtos %q, want %q", c.NextProtos, tc.protos)
			}
			if (len(c.CipherSuites) > 0) != tc.ciphers {
				t.Errorf("CipherSuites %v, want restricted: %v", c.CipherSuites, tc.ciphers)
			}
			for _, id := range c.CipherSuites {
				name := tls.CipherSuiteName(id)
				if !strings.HasPrefix(name, "TLS_ECDHE_") || !(strings.Contains(name, "_GCM_") || strings.Contains(name, "CHACHA20")) {
					t.Errorf("cipher %s is not ECDHE with AEAD", name)
				}
			}
		})
	}
}

// writeFile writes b to dir/name.
func writeFile(t *testing.T, dir, name string, b []byte) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// expiredPair is a self-signed certificate and key that expired an hour ago.
func expiredPair(t *testing.T) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "expired"},
		NotBefore: time.Now().Add(-2 * time.Hour), NotAfter: time.Now().Add(-time.Hour), DNSNames: []string{"localhost"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

// eventually waits until cond holds, failing after 30s.
func eventually(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 30s; last: %s", what, state)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// checkSays is a condition: sc.Check fails with a message containing s.
func checkSays(sc *ServingCert, s string) func() (bool, string) {
	return func() (bool, string) {
		err := sc.Check(nil)
		return err != nil && strings.Contains(err.Error(), s), "Check: " + errString(err)
	}
}

func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

func TestServingCertWaitsForValidFiles(t *testing.T) {
	dir := t.TempDir()
	sc := NewServingCert(filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"))
	if err := sc.Check(nil); err == nil || !strings.Contains(err.Error(), "not loaded yet") {
		t.Fatalf("before Start: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sc.Start(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Start returned %v", err)
		}
	}()

	eventually(t, "missing files are reported", checkSays(sc, "no such file or directory"))
	writeFile(t, dir, "tls.crt", []byte("garbage"))
	writeFile(t, dir, "tls.key", []byte("garbage"))
	eventually(t, "invalid files are reported", checkSays(sc, "failed to find any PEM data"))
	if _, err := sc.GetCertificate(nil); err == nil {
		t.Fatal("GetCertificate served garbage")
	}

	ss, err := certs.NewSelfSigned([]string{"localhost"})
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, "tls.key", ss.KeyPEM)
	writeFile(t, dir, "tls.crt", ss.CertPEM)
	eventually(t, "valid files are served", func() (bool, string) {
		c, err := sc.GetCertificate(nil)
		return err == nil && c != nil && c.Leaf.Subject.CommonName == "localhost", errString(err)
	})

	// A rotation to an expired certificate: served no more.
	crt, key := expiredPair(t)
	writeFile(t, dir, "tls.key", key)
	writeFile(t, dir, "tls.crt", crt)
	eventually(t, "an expired certificate is refused", checkSays(sc, "expired at"))
}
