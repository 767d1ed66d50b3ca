package sidecar

import (
	"flag"
	"io"
	"testing"
	"time"
)

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

// parse reads args (without the command) the way elect does.
func parse(t *testing.T, args []string, lookup func(string) (string, bool)) (Config, error) {
	t.Helper()
	fs := flag.NewFlagSet(Command, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	f := BindFlags(fs, lookup)
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	return f.Config()
}

func TestArgsRoundTrip(t *testing.T) {
	pod := env(map[string]string{EnvPodName: "app-0", EnvPodNamespace: "jobs"})
	tests := map[string]Config{
		"the defaults": func() Config { c := Defaults(pod); c.LeaseName = "app"; return c }(),
		"every field changed": {LeaseName: "lock", LeaseNamespace: "jobs", Identity: "app-0",
			Timings: Timings{2 * time.Second, 1710 * time.Millisecond, 590 * time.Millisecond},
			Port:    19001, MetricsAddress: ":9090", StateDir: "/state", WatchLease: false},
	}
	for name, want := range tests {
		t.Run(name, func(t *testing.T) {
			args := want.Args()
			if args[0] != Command {
				t.Fatalf("args %q do not start with %q", args, Command)
			}
			got, err := parse(t, args[1:], pod)
			if err != nil {
				t.Fatalf("parse %q: %v", args, err)
			}
			if got != want {
				t.Errorf("parsed %+v\nwant   %+v", got, want)
			}
		})
	}
}

func TestFlagsRefusals(t *testing.T) {
	pod := env(map[string]string{EnvPodName: "app-0", EnvPodNamespace: "jobs"})
	tests := map[string]struct {
		args []string
		env  func(string) (string, bool)
		want string
	}{
		"no lease name": {nil, pod, "--lease-name is required: the name of the Lease the candidates share"},
		"no namespace":  {[]string{"--lease-name=l"}, env(map[string]string{EnvPodName: "p"}), "--lease-namespace is empty: set it, or $POD_NAMESPACE"},
		"no identity":   {[]string{"--lease-name=l"}, env(map[string]string{EnvPodNamespace: "ns"}), "--identity is empty: set it, or $POD_NAME"},
		"every interface": {[]string{"--lease-name=l", "--listen-address=0.0.0.0:8910"}, pod,
			`--listen-address "0.0.0.0:8910" must be on 127.0.0.1 (such as 127.0.0.1:8910): GET /leader is for the Pod's own containers only; serve metrics to others with --metrics-bind-address`},
		"a port out of range": {[]string{"--lease-name=l", "--listen-address=127.0.0.1:70000"}, pod,
			`--listen-address "127.0.0.1:70000": the port must be a number from 1 to 65535`},
		"timings against the rule": {[]string{"--lease-name=l", "--lease-duration=2s", "--renew-deadline=1.8s", "--retry-period=300ms"}, pod,
			"--lease-duration, --renew-deadline, --retry-period: renew deadline 1.8s must be at most lease duration 2s − 290ms = 1.71s (2% of the lease duration for clocks running at different rates, plus 250ms for the sidecar to drop its signals)"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := parse(t, tc.args, tc.env)
			if err == nil || err.Error() != tc.want {
				t.Errorf("got %v\nwant %s", err, tc.want)
			}
		})
	}
}
