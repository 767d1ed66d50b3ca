package elector

import (
	"errors"
	"fmt"
	"time"

	"k8s.io/client-go/tools/leaderelection"
)

// Defaults of the sidecar, the values core Kubernetes components use.
const (
	// DefaultLeaseDuration is how long standbys wait after the last renewal
	// they saw before they take the Lease over.
	DefaultLeaseDuration = 15 * time.Second
	// DefaultRenewDeadline is how long the leader keeps its signals after
	// its last successful renewal.
	DefaultRenewDeadline = 10 * time.Second
	// DefaultRetryPeriod is the pause between two attempts to acquire or renew.
	DefaultRetryPeriod = 2 * time.Second
	// DefaultListenAddress is where /leader, /healthz and /metrics are served.
	DefaultListenAddress = ":8910"
	// DefaultStateDir is the shared volume that holds the leader file.
	DefaultStateDir = "/var/run/singleton"
)

// Names the application sees.
const (
	// LeaderFileName is the file in the state directory that exists only
	// while this replica leads.
	LeaderFileName = "leader"
	// RoleLabel is the Pod label set to RoleLeader or RoleStandby.
	RoleLabel = "singleton.dev/role"
	// RoleLeader is the RoleLabel value of the leading Pod.
	RoleLeader = "leader"
	// RoleStandby is the RoleLabel value of every other candidate.
	RoleStandby = "standby"
)

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

	// ListenAddress serves /leader, /healthz and /metrics. Empty disables
	// the HTTP server (the Elector's Handler can still be mounted elsewhere).
	ListenAddress string
	// StateDir holds the leader file. Empty disables the file.
	StateDir string

	// PodName is the Pod whose RoleLabel is patched. Empty disables the label.
	PodName string
	// PodNamespace is the namespace of PodName; empty means LeaseNamespace.
	PodNamespace string

	// WatchLease makes standbys watch the Lease and try to acquire it as soon
	// as the holder releases it, instead of at their next retry. It needs
	// the "watch" verb on leases; without it the candidate falls back to
	// retrying every RetryPeriod.
	WatchLease bool
}

// Validate checks the three election timings with the rule of client-go
// leaderelection: all positive, leaseDuration > renewDeadline >
// JitterFactor (1.2) × retryPeriod. It also requires leaseDuration to be
// whole seconds: the Lease stores seconds, and a truncated duration would
// eat the margin between renewDeadline and the moment standbys take over.
// It is a pure function, so admission code can apply the same rule to
// annotations. Error texts name the values, e.g. "lease duration 5s must be
// greater than renew deadline 10s".
func Validate(leaseDuration, renewDeadline, retryPeriod time.Duration) error {
	for _, d := range []struct {
		name  string
		value time.Duration
	}{{"lease duration", leaseDuration}, {"renew deadline", renewDeadline}, {"retry period", retryPeriod}} {
		if d.value <= 0 {
			return fmt.Errorf("%s %s must be greater than zero", d.name, d.value)
		}
	}
	if leaseDuration%time.Second != 0 {
		return fmt.Errorf("lease duration %s must be a whole number of seconds (the Lease stores seconds)", leaseDuration)
	}
	if leaseDuration <= renewDeadline {
		return fmt.Errorf("lease duration %s must be greater than renew deadline %s", leaseDuration, renewDeadline)
	}
	minRenew := time.Duration(leaderelection.JitterFactor * float64(retryPeriod))
	if renewDeadline <= minRenew {
		return fmt.Errorf("renew deadline %s must be greater than %g × retry period %s = %s",
			renewDeadline, leaderelection.JitterFactor, retryPeriod, minRenew)
	}
	return nil
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
	return Validate(c.LeaseDuration, c.RenewDeadline, c.RetryPeriod)
}

func (c *Config) podNamespace() string {
	if c.PodNamespace != "" {
		return c.PodNamespace
	}
	return c.LeaseNamespace
}
