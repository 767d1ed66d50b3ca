package certs

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

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
func checkSays(sc *Files, s string) func() (bool, string) {
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

func TestFilesWaitsForValidFiles(t *testing.T) {
	dir := t.TempDir()
	sc := NewFiles(filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"))
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

	ss, err := NewSelfSigned([]string{"localhost"})
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
