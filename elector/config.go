package elector

import (
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/singleton-webhook/singleton-webhook/internal/sidecar"
)

// Defaults of the sidecar; the contract package owns them.
const (
	// DefaultLeaseDuration is sidecar.DefaultLeaseDuration.
	DefaultLeaseDuration = sidecar.DefaultLeaseDuration
	// DefaultRenewDeadline is sidecar.DefaultRenewDeadline.
	DefaultRenewDeadline = sidecar.DefaultRenewDeadline
	// DefaultRetryPeriod is sidecar.DefaultRetryPeriod.
	DefaultRetryPeriod = sidecar.DefaultRetryPeriod
	// DefaultStateDir is sidecar.StateDir, the shared volume that holds the
	// leader file.
	DefaultStateDir = sidecar.StateDir
)

// Names the application sees; the contract package owns them.
const (
	// LeaderFileName is sidecar.LeaderFileName.
	LeaderFileName = sidecar.LeaderFileName
	// RoleLabel is sidecar.RoleLabel.
	RoleLabel = sidecar.RoleLabel
	// RoleLeader is sidecar.RoleLeader.
	RoleLeader = sidecar.RoleLeader
	// RoleStandby is sidecar.RoleStandby.
	RoleStandby = sidecar.RoleStandby
)

// DefaultListenAddress returns where /leader and /healthz are served by
// default: the Pod's loopback only, on sidecar.DefaultPort.
func DefaultListenAddress() string {
	return sidecar.Config{Port: sidecar.DefaultPort}.ListenAddress()
}

// Config is the configuration of one candidate.
type Config struct {
	// LeaseName is the coordination.k8s.io/v1 Lease all candidates share.
	LeaseName string
	// LeaseNamespace is the namespace of the Lease.
	LeaseNamespace string
	// Identity names this candidate in the Lease; the Pod name.
	Identity string

	// LeaseDuration, RenewDeadline and RetryPeriod are the client-go timings;
	// see Validate for the rule they follow. Defaults: DefaultLeaseDuration,
	// DefaultRenewDeadline, DefaultRetryPeriod.
	LeaseDuration time.Duration
	RenewDeadline time.Duration
	RetryPeriod   time.Duration

	// ListenAddress serves /leader and /healthz; it must be a loopback
	// address (127.0.0.1:PORT, [::1]:PORT), so only the Pod's own
	// containers can ask. Empty disables the HTTP server (the Elector's
	// Handler can still be mounted elsewhere).
	ListenAddress string
	// MetricsAddress serves /metrics (Prometheus) and /healthz, on any
	// interface. Empty or "0" disables it, the default.
	MetricsAddress string
	// StateDir holds the leader file. Empty disables the file.
	StateDir string

	// WatchLease makes standbys watch the Lease and try to acquire it as soon
	// as the holder releases it, instead of at their next retry. It needs
	// the "watch" verb on leases; without it the candidate falls back to
	// retrying every RetryPeriod.
	WatchLease bool
}

// ConfigFrom is the Config of the contract's sidecar.Config, as elect
// parses it from its flags.
func ConfigFrom(c sidecar.Config) Config {
	return Config{
		LeaseName: c.LeaseName, LeaseNamespace: c.LeaseNamespace, Identity: c.Identity,
		LeaseDuration: c.LeaseDuration, RenewDeadline: c.RenewDeadline, RetryPeriod: c.RetryPeriod,
		ListenAddress: c.ListenAddress(), MetricsAddress: c.MetricsAddress, StateDir: c.StateDir,
		WatchLease: c.WatchLease,
	}
}

// Validate checks the three election timings with the rule of
// sidecar.Timings, which the webhook applies to the annotations as well.
func Validate(leaseDuration, renewDeadline, retryPeriod time.Duration) error {
	return sidecar.Timings{LeaseDuration: leaseDuration, RenewDeadline: renewDeadline, RetryPeriod: retryPeriod}.Validate()
}

// Validate checks the whole configuration before anything starts.
func (c *Config) Validate() error {
	switch {
	case c.LeaseName == "":
		return errors.New("lease name must not be empty")
	case c.LeaseNamespace == "":
		return errors.New("lease namespace must not be empty")
	case c.Identity == "":
		return errors.New("identity must not be empty")
	}
	if err := checkLoopback(c.ListenAddress); err != nil {
		return err
	}
	return Validate(c.LeaseDuration, c.RenewDeadline, c.RetryPeriod)
}

// checkLoopback accepts an empty address or one whose host is a loopback IP.
func checkLoopback(addr string) error {
	if addr == "" {
		return nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("listen address %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("listen address %q must be on a loopback IP such as 127.0.0.1:%d: GET /leader is for the Pod's own containers only (use the metrics address to serve /metrics to others)",
			addr, sidecar.DefaultPort)
	}
	return nil
}

// metricsEnabled reports whether MetricsAddress asks for a server.
func (c *Config) metricsEnabled() bool {
	return c.MetricsAddress != "" && c.MetricsAddress != "0"
}
