package webhook

import (
	"crypto/tls"
	"fmt"
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
