//go:build integration

package install

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// servingKeys are the Secret keys the Deployment projects into its
// certificate directory (manifests/deployment.yaml, volume serving-cert).
func servingKeys() []string { return []string{"tls.crt", "tls.key"} }

// projector writes a Secret's data into a directory the way the kubelet
// updates a Secret volume (its AtomicWriter): the files live in a fresh
// timestamped directory, `..data` is a symlink to it swapped by an atomic
// rename, and each visible file is a symlink through `..data`. A reader
// therefore sees either the old set of files or the new one, and the old
// directory is removed after the swap, as on a node.
type projector struct {
	dir string
}

func (p projector) write(data map[string][]byte) error {
	ts, err := os.MkdirTemp(p.dir, time.Now().UTC().Format("..2006_01_02_15_04_05."))
	if err != nil {
		return fmt.Errorf("project secret: %w", err)
	}
	for _, k := range servingKeys() {
		if len(data[k]) == 0 {
			return fmt.Errorf("project secret: no %s", k)
		}
		if err := os.WriteFile(filepath.Join(ts, k), data[k], 0o600); err != nil {
			return fmt.Errorf("project secret: %w", err)
		}
	}
	dataLink := filepath.Join(p.dir, "..data")
	old, err := os.Readlink(dataLink)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("project secret: %w", err)
	}
	tmp := filepath.Join(p.dir, "..data_tmp")
	if err := os.Symlink(filepath.Base(ts), tmp); err != nil {
		return fmt.Errorf("project secret: %w", err)
	}
	if err := os.Rename(tmp, dataLink); err != nil {
		return fmt.Errorf("project secret: swap ..data: %w", err)
	}
	for _, k := range servingKeys() {
		link := filepath.Join(p.dir, k)
		if _, err := os.Lstat(link); errors.Is(err, os.ErrNotExist) {
			if err := os.Symlink(filepath.Join("..data", k), link); err != nil {
				return fmt.Errorf("project secret: %w", err)
			}
		}
	}
	if old != "" {
		if err := os.RemoveAll(filepath.Join(p.dir, old)); err != nil {
			return fmt.Errorf("project secret: remove the previous files: %w", err)
		}
	}
	return nil
}

// servedSerial connects to addr as a client trusting only caBundle (what the
// API server trusts) and returns the serial number of the certificate the
// server presents. It sends SNI "localhost", which the API server, calling
// an IP URL, never sends.
func servedSerial(addr string, caBundle []byte) (*big.Int, error) {
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caBundle) {
		return nil, errors.New("served certificate: no certificate in the CA bundle")
	}
	d := &net.Dialer{Timeout: 5 * time.Second}
	conn, err := tls.DialWithDialer(d, "tcp", addr, &tls.Config{RootCAs: roots, ServerName: "localhost", MinVersion: tls.VersionTLS12})
	if err != nil {
		return nil, fmt.Errorf("served certificate: %w", err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber, nil
}

// leaf parses the first certificate of a PEM bundle.
func leaf(pemBytes []byte) (*x509.Certificate, error) {
	b, _ := pem.Decode(pemBytes)
	if b == nil || b.Type != "CERTIFICATE" {
		return nil, errors.New("parse certificate: no PEM certificate")
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse certificate: %w", err)
	}
	return c, nil
}
