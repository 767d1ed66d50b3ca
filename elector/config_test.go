package elector

import (
	"testing"
	"time"

	"github.com/singleton-webhook/singleton-webhook/internal/sidecar"
)

func TestValidate(t *testing.T) {
	const s = time.Second
	tests := map[string]struct {
		lease, renew, retry time.Duration
		want                string
	}{
		"the production defaults are valid":       {15 * s, 10 * s, 2 * s, ""},
		"the tightest accepted timings are valid": {2 * s, 1710 * time.Millisecond, 590 * time.Millisecond, ""},
		"a renew deadline past the margin fails": {2 * s, 1800 * time.Millisecond, 300 * time.Millisecond,
			"renew deadline 1.8s must be at most lease duration 2s − 290ms = 1.71s (2% of the lease duration for clocks running at different rates, plus 250ms for the sidecar to drop its signals)"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := Validate(tc.lease, tc.renew, tc.retry)
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tc.want {
				t.Errorf("Validate(%s, %s, %s) = %q, want %q", tc.lease, tc.renew, tc.retry, got, tc.want)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	valid := Config{LeaseName: "app", LeaseNamespace: "ns", Identity: "app-0",
		LeaseDuration: DefaultLeaseDuration, RenewDeadline: DefaultRenewDeadline, RetryPeriod: DefaultRetryPeriod}
	tests := map[string]struct {
		edit func(*Config)
		want string
	}{
		"a complete config is valid": {func(*Config) {}, ""},
		"an empty lease name fails":  {func(c *Config) { c.LeaseName = "" }, "lease name must not be empty"},
		"an empty namespace fails":   {func(c *Config) { c.LeaseNamespace = "" }, "lease namespace must not be empty"},
		"an empty identity fails":    {func(c *Config) { c.Identity = "" }, "identity must not be empty"},
		"invalid timings fail the same": {func(c *Config) { c.LeaseDuration = 10 * time.Second },
			"renew deadline 10s must be at most lease duration 10s − 450ms = 9.55s (2% of the lease duration for clocks running at different rates, plus 250ms for the sidecar to drop its signals)"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c := valid
			tc.edit(&c)
			got := ""
			if err := c.Validate(); err != nil {
				got = err.Error()
			}
			if got != tc.want {
				t.Errorf("Validate() = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestDefaultListenAddressIsTheContractsPort(t *testing.T) {
	c := Config{LeaseName: "l", LeaseNamespace: "ns", Identity: "pod", ListenAddress: DefaultListenAddress(),
		LeaseDuration: DefaultLeaseDuration, RenewDeadline: DefaultRenewDeadline, RetryPeriod: DefaultRetryPeriod}
	if err := c.Validate(); err != nil {
		t.Fatalf("the default listen address is refused: %v", err)
	}
	if want := ConfigFrom(sidecar.Defaults(func(string) (string, bool) { return "", false })).ListenAddress; c.ListenAddress != want {
		t.Errorf("DefaultListenAddress() = %q, the contract's default is %q", c.ListenAddress, want)
	}
}
