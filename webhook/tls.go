package webhook

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/certwatcher"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
)

// TLS versions accepted by --tls-min-version.
const (
	TLS12 = "1.2"
	TLS13 = "1.3"
)

// ParseTLSVersion reads a --tls-min-version value: "1.2" or "1.3".
func ParseTLSVersion(s string) (uint16, error) {
	switch s {
	case TLS12:
		return tls.VersionTLS12, nil
	case TLS13:
		return tls.VersionTLS13, nil
	}
	return 0, fmt.Errorf("TLS version %q is not supported: use %s or %s", s, TLS12, TLS13)
}

// tls12Ciphers are the TLS 1.2 suites allowed: ECDHE key exchange (forward
// secrecy) with an AEAD cipher, as kube-apiserver offers them. TLS 1.3
// suites are not configurable in Go and are all AEAD.
var tls12Ciphers = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// TLSOptions are the TLS settings of every server of `serve`.
type TLSOptions struct {
	// MinVersion is tls.VersionTLS12 or tls.VersionTLS13.
	MinVersion uint16
	// EnableHTTP2 offers h2 in ALPN. Off, only http/1.1 is offered, and a
	// client that insists on h2 fails the handshake: HTTP/2 has had
	// denial-of-service flaws (CVE-2023-44487, CVE-2023-39325) and the API
	// server talks HTTP/1.1 to webhooks anyway.
	EnableHTTP2 bool
}

// Apply sets the options on c; use it as a controller-runtime TLSOpts entry.
func (o TLSOptions) Apply(c *tls.Config) {
	c.MinVersion = o.MinVersion
	if c.MinVersion < tls.VersionTLS12 {
		c.MinVersion = tls.VersionTLS12
	}
	c.CipherSuites = nil
	if c.MinVersion < tls.VersionTLS13 {
		c.CipherSuites = tls12Ciphers
	}
	c.NextProtos = []string{"http/1.1"}
	if o.EnableHTTP2 {
		c.NextProtos = []string{"h2", "http/1.1"}
	}
}

// certPoll is how often ServingCert retries files that are missing or
// invalid, until the first good load. Rotation is then watched by
// controller-runtime's certwatcher (fsnotify, and a 10s re-read).
const certPoll = time.Second

// ServingCert serves the certificate and key of two files. Unlike
// controller-runtime's default, the files need not exist or be valid when the
// server starts: until they are, every TLS handshake fails, and so does the
// webhook server's readiness check (a TLS dial), so the Pod is not ready. It
// becomes ready within a second of valid files appearing.
type ServingCert struct {
	certPath, keyPath string

	mu      sync.RWMutex
	watcher *certwatcher.CertWatcher
	loadErr error
}

// NewServingCert returns the source of the certificate in certPath, keyPath.
func NewServingCert(certPath, keyPath string) *ServingCert {
	return &ServingCert{certPath: certPath, keyPath: keyPath,
		loadErr: errors.New("serving certificate not loaded yet")}
}

// Start loads the files, retrying until they are valid, then reloads them
// whenever they change, until ctx is done.
func (s *ServingCert) Start(ctx context.Context) error {
	log := logf.FromContext(ctx).WithName("serving-cert").WithValues("cert", s.certPath, "key", s.keyPath)
	var logged string
	for {
		w, err := certwatcher.New(s.certPath, s.keyPath)
		if err == nil {
			s.mu.Lock()
			s.watcher, s.loadErr = w, nil
			s.mu.Unlock()
			log.Info("serving certificate loaded")
			return w.Start(ctx)
		}
		s.mu.Lock()
		s.loadErr = err
		s.mu.Unlock()
		if err.Error() != logged {
			logged = err.Error()
			log.Info("waiting for a valid serving certificate", "error", logged)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(certPoll):
		}
	}
}

// GetCertificate implements tls.Config.GetCertificate. It refuses the
// handshake while no valid certificate is loaded, or when the loaded one has
// expired (the rotation did not happen).
func (s *ServingCert) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	s.mu.RLock()
	w, loadErr := s.watcher, s.loadErr
	s.mu.RUnlock()
	if w == nil {
		return nil, fmt.Errorf("no valid serving certificate in %s: %w", s.certPath, loadErr)
	}
	c, err := w.GetCertificate(nil)
	if err != nil || c == nil {
		return nil, fmt.Errorf("no serving certificate: %w", err)
	}
	if c.Leaf != nil && time.Now().After(c.Leaf.NotAfter) {
		return nil, fmt.Errorf("serving certificate %s expired at %s", s.certPath, c.Leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	return c, nil
}

// Check is a readiness check: it fails, saying why, while GetCertificate
// would refuse handshakes.
func (s *ServingCert) Check(*http.Request) error {
	_, err := s.GetCertificate(nil)
	return err
}
