package certs

import (
	"context"
	"crypto/tls"
	"net/http"
)

// Source is where a server's certificate comes from: Files (cert-manager's
// Secret, mounted) or SelfSigned (generated in memory for local runs). A
// Source is a controller-runtime Runnable: the manager starts it with the
// servers that use it.
type Source interface {
	// GetCertificate returns the certificate to serve; it fits
	// tls.Config.GetCertificate and fails while there is none to serve.
	GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error)
	// Start keeps the certificate current until ctx is done.
	Start(ctx context.Context) error
	// Check is a readiness check: it fails, saying why, while
	// GetCertificate would refuse handshakes.
	Check(*http.Request) error
}
