package certs

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

var _ Source = (*Files)(nil)

// certPoll is how often Files retries files that are missing or
// invalid, until the first good load. Rotation is then watched by
// controller-runtime's certwatcher (fsnotify, and a 10s re-read).
const certPoll = time.Second

// Files is the Source of a certificate and key in two files, as
// cert-manager issues them into a Secret that the kubelet mounts. Unlike
// controller-runtime's default, the files need not exist or be valid when the
// server starts: until they are, every TLS handshake fails, and so does the
// webhook server's readiness check (a TLS dial), so the Pod is not ready. It
// becomes ready within a second of valid files appearing.
type Files struct {
	certPath, keyPath string

	mu      sync.RWMutex
	watcher *certwatcher.CertWatcher
	loadErr error
}

// NewFiles returns the source of the certificate in certPath, keyPath. Start
// loads them.
func NewFiles(certPath, keyPath string) *Files {
	return &Files{certPath: certPath, keyPath: keyPath,
		loadErr: errors.New("serving certificate not loaded yet")}
}

// Start loads the files, retrying until they are valid, then reloads them
// whenever they change, until ctx is done.
func (s *Files) Start(ctx context.Context) error {
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
func (s *Files) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
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
func (s *Files) Check(*http.Request) error {
	_, err := s.GetCertificate(nil)
	return err
}
