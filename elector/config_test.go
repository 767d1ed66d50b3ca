package elector

import (
	"testing"
	"time"
)

func TestValidate(t *testing.T) {
	const s = time.Second
	tests := map[string]struct {
		lease, renew, retry time.Duration
		want                string
	}{
		"the production defaults are valid":             {15 * s, 10 * s, 2 * s, ""},
		"short test timings are valid":                  {2 * s, 1500 * time.Millisecond, 300 * time.Millisecond, ""},
		"a lease shorter than the renew deadline fails": {5 * s, 10 * s, 2 * s, "lease duration 5s must be greater than renew deadline 10s"},
		"a lease equal to the renew deadline fails":     {10 * s, 10 * s, 2 * s, "lease duration 10s must be greater than renew deadline 10s"},
		"a renew deadline within 1.2 retries fails": {15 * s, 2400 * time.Millisecond, 2 * s,
			"renew deadline 2.4s must be greater than 1.2 × retry period 2s = 2.4s"},
		"a renew deadline just above 1.2 retries passes": {15 * s, 2401 * time.Millisecond, 2 * s, ""},
		"a zero lease duration fails":                    {0, 10 * s, 2 * s, "lease duration 0s must be greater than zero"},
		"a negative renew deadline fails":                {15 * s, -s, 2 * s, "renew deadline -1s must be greater than zero"},
		"a zero retry period fails":                      {15 * s, 10 * s, 0, "retry period 0s must be greater than zero"},
		"a fractional lease duration fails": {2500 * time.Millisecond, 2 * s, s,
			"lease duration 2.5s must be a whole number of seconds (the Lease stores seconds)"},
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
		"a complete config is valid":    {func(*Config) {}, ""},
		"an empty lease name fails":     {func(c *Config) { c.LeaseName = "" }, "lease name must not be empty"},
		"an empty namespace fails":      {func(c *Config) { c.LeaseNamespace = "" }, "lease namespace must not be empty"},
		"an empty identity fails":       {func(c *Config) { c.Identity = "" }, "identity must not be empty"},
		"invalid timings fail the same": {func(c *Config) { c.LeaseDuration = 5 * time.Second }, "lease duration 5s must be greater than renew deadline 10s"},
		"an empty pod name is allowed":  {func(c *Config) { c.PodName = "" }, ""},
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
