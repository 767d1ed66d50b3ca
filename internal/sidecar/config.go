package sidecar

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"strconv"
)

// Command is the binary's subcommand that runs the sidecar; the injected
// container's arguments start with it.
const Command = "elect"

// Environment variables the injected sidecar gets from the downward API,
// and elect's flags default to.
const (
	// EnvPodName holds the Pod's name: the candidate's identity.
	EnvPodName = "POD_NAME"
	// EnvPodNamespace holds the Pod's namespace: the Lease's namespace.
	EnvPodNamespace = "POD_NAMESPACE"
)

// Config is what the webhook asks of a sidecar and what elect runs with.
// Args turns it into the injected arguments, BindFlags parses them back.
type Config struct {
	// LeaseName is the coordination.k8s.io/v1 Lease all candidates share.
	LeaseName string
	// LeaseNamespace is the Lease's namespace; injected as $POD_NAMESPACE.
	LeaseNamespace string
	// Identity names this candidate in the Lease; injected as $POD_NAME.
	Identity string
	// Timings are the election timings; see Timings for the rule.
	Timings
	// Port is where GET /leader and /healthz are served, on 127.0.0.1.
	Port int
	// MetricsAddress serves /metrics on any interface; "0" (the default)
	// disables it.
	MetricsAddress string
	// StateDir holds the leader file.
	StateDir string
	// WatchLease makes standbys watch the Lease to try at once when it is
	// released.
	WatchLease bool
}

// Flag names of elect, as Args writes them.
const (
	FlagLeaseName      = "lease-name"
	FlagLeaseNamespace = "lease-namespace"
	FlagIdentity       = "identity"
	FlagLeaseDuration  = "lease-duration"
	FlagRenewDeadline  = "renew-deadline"
	FlagRetryPeriod    = "retry-period"
	FlagListenAddress  = "listen-address"
	FlagMetricsAddress = "metrics-bind-address"
	FlagStateDir       = "state-dir"
	FlagLeaseWatch     = "lease-watch"
)

// MetricsDisabled is the MetricsAddress that serves no metrics.
const MetricsDisabled = "0"

// Defaults is the Config of a sidecar given no flags; lookupEnv supplies
// $POD_NAME and $POD_NAMESPACE (os.LookupEnv in the binary).
func Defaults(lookupEnv func(string) (string, bool)) Config {
	env := func(k string) string { v, _ := lookupEnv(k); return v }
	return Config{
		LeaseNamespace: env(EnvPodNamespace), Identity: env(EnvPodName),
		Timings: DefaultTimings(), Port: DefaultPort, MetricsAddress: MetricsDisabled,
		StateDir: StateDir, WatchLease: true,
	}
}

// ListenAddress is where GET /leader is served: 127.0.0.1:Port.
func (c Config) ListenAddress() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(c.Port))
}

// Args are the container arguments that make elect run with c, for a Pod
// whose environment has $POD_NAME and $POD_NAMESPACE: the identity and
// namespace come from there, everything else is written out.
func (c Config) Args() []string {
	args := []string{Command,
		"--" + FlagLeaseName + "=" + c.LeaseName,
		"--" + FlagLeaseDuration + "=" + c.LeaseDuration.String(),
		"--" + FlagRenewDeadline + "=" + c.RenewDeadline.String(),
		"--" + FlagRetryPeriod + "=" + c.RetryPeriod.String(),
		"--" + FlagListenAddress + "=" + c.ListenAddress(),
		"--" + FlagStateDir + "=" + c.StateDir,
	}
	if c.MetricsAddress != MetricsDisabled && c.MetricsAddress != "" {
		args = append(args, "--"+FlagMetricsAddress+"="+c.MetricsAddress)
	}
	if !c.WatchLease {
		args = append(args, "--"+FlagLeaseWatch+"=false")
	}
	return args
}

// Flags binds elect's flags of the contract to a Config; Config returns
// it once the flags are parsed.
type Flags struct {
	cfg    Config
	listen string
}

// BindFlags registers elect's contract flags on fs, defaulting to
// Defaults(lookupEnv).
func BindFlags(fs *flag.FlagSet, lookupEnv func(string) (string, bool)) *Flags {
	f := &Flags{cfg: Defaults(lookupEnv)}
	c := &f.cfg
	f.listen = c.ListenAddress()
	fs.StringVar(&c.LeaseName, FlagLeaseName, "", "name of the coordination.k8s.io/v1 Lease the candidates share (required)")
	fs.StringVar(&c.LeaseNamespace, FlagLeaseNamespace, c.LeaseNamespace, "namespace of the Lease; default $"+EnvPodNamespace)
	fs.StringVar(&c.Identity, FlagIdentity, c.Identity, "this candidate's identity in the Lease; default $"+EnvPodName)
	fs.DurationVar(&c.LeaseDuration, FlagLeaseDuration, c.LeaseDuration,
		"how long standbys wait after the last change of the Lease they saw before taking over (whole seconds)")
	fs.DurationVar(&c.RenewDeadline, FlagRenewDeadline, c.RenewDeadline,
		"how long the leader keeps its signals after the first write of the record it last renewed; at most the lease duration − 2% − 250ms")
	fs.DurationVar(&c.RetryPeriod, FlagRetryPeriod, c.RetryPeriod,
		"pause between two attempts to acquire or renew; 1s + 1.2 × retry period must be less than the renew deadline")
	fs.StringVar(&f.listen, FlagListenAddress, f.listen, "loopback address of GET /leader and /healthz (127.0.0.1:PORT)")
	fs.StringVar(&c.MetricsAddress, FlagMetricsAddress, c.MetricsAddress, `address of GET /metrics, on any interface; "0" disables it`)
	fs.StringVar(&c.StateDir, FlagStateDir, c.StateDir, `directory of the "leader" file, present only while leading`)
	fs.BoolVar(&c.WatchLease, FlagLeaseWatch, c.WatchLease,
		"watch the Lease so standbys take over as soon as it is released (needs the watch verb on the Lease)")
	return f
}

// Config validates the parsed flags and returns the Config they describe.
func (f *Flags) Config() (Config, error) {
	c := f.cfg
	host, port, err := net.SplitHostPort(f.listen)
	if err != nil {
		return c, fmt.Errorf("--%s %q: %w", FlagListenAddress, f.listen, err)
	}
	if host != "127.0.0.1" {
		return c, fmt.Errorf("--%s %q must be on 127.0.0.1 (such as 127.0.0.1:%d): GET /leader is for the Pod's own containers only; serve metrics to others with --%s",
			FlagListenAddress, f.listen, DefaultPort, FlagMetricsAddress)
	}
	if c.Port, err = strconv.Atoi(port); err != nil || c.Port <= 0 || c.Port > 65535 {
		return c, fmt.Errorf("--%s %q: the port must be a number from 1 to 65535", FlagListenAddress, f.listen)
	}
	switch {
	case c.LeaseName == "":
		return c, fmt.Errorf("--%s is required: the name of the Lease the candidates share", FlagLeaseName)
	case c.LeaseNamespace == "":
		return c, fmt.Errorf("--%s is empty: set it, or $%s", FlagLeaseNamespace, EnvPodNamespace)
	case c.Identity == "":
		return c, fmt.Errorf("--%s is empty: set it, or $%s", FlagIdentity, EnvPodName)
	}
	var te *TimingError
	if err := c.Timings.Validate(); errors.As(err, &te) {
		return c, fmt.Errorf("--%s, --%s, --%s: %w", FlagLeaseDuration, FlagRenewDeadline, FlagRetryPeriod, err)
	}
	return c, nil
}
