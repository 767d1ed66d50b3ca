package certs

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"time"
)

// selfSignedValidity is how long a generated CA and serving certificate are
// valid. Local runs and tests never last that long.
const selfSignedValidity = 7 * 24 * time.Hour

// SelfSigned is an in-memory CA and a serving certificate it signed.
type SelfSigned struct {
	// CAPEM is the CA certificate, PEM encoded: the webhook's caBundle.
	CAPEM []byte
	// CertPEM and KeyPEM are the serving certificate and its key.
	CertPEM, KeyPEM []byte
	// Certificate is the parsed serving certificate, ready for a tls.Config.
	Certificate tls.Certificate
}

// NewSelfSigned generates a CA and a serving certificate for hosts, each a
// DNS name or an IP address. The keys are ECDSA P-256.
func NewSelfSigned(hosts []string) (*SelfSigned, error) {
	if len(hosts) == 0 {
		return nil, fmt.Errorf("self-signed certificate: no host names")
	}
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate CA key: %w", err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "singleton-webhook local CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(selfSignedValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		return nil, fmt.Errorf("sign CA certificate: %w", err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, fmt.Errorf("parse CA certificate: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate serving key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: hosts[0]},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(selfSignedValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, key.Public(), caKey)
	if err != nil {
		return nil, fmt.Errorf("sign serving certificate: %w", err)
	}
	s := &SelfSigned{
		CAPEM:   pemBlock("CERTIFICATE", caDER),
		CertPEM: pemBlock("CERTIFICATE", der),
	}
	if s.KeyPEM, err = keyPEM(key); err != nil {
		return nil, err
	}
	if s.Certificate, err = tls.X509KeyPair(s.CertPEM, s.KeyPEM); err != nil {
		return nil, fmt.Errorf("load serving key pair: %w", err)
	}
	return s, nil
}

var _ Source = (*SelfSigned)(nil)

// GetCertificate serves the generated certificate; it fits tls.Config.
func (s *SelfSigned) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return &s.Certificate, nil
}

// Start implements Source: the certificate in memory never changes, so
// there is nothing to keep current.
func (s *SelfSigned) Start(context.Context) error { return nil }

// Check implements Source: the certificate is always there.
func (s *SelfSigned) Check(*http.Request) error { return nil }

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		// crypto/rand never fails on Linux; a fixed serial is still valid.
		return big.NewInt(1)
	}
	return n
}

func pemBlock(typ string, der []byte) []byte {
	var b bytes.Buffer
	_ = pem.Encode(&b, &pem.Block{Type: typ, Bytes: der})
	return b.Bytes()
}

func keyPEM(k crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, fmt.Errorf("encode serving key: %w", err)
	}
	return pemBlock("PRIVATE KEY", der), nil
}
