package webhook

import (
	"crypto/tls"
	"slices"
	"strings"
	"testing"
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
