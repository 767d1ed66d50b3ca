package app

import (
	"errors"
	"flag"
	"io"
	"testing"
	"time"

	"github.com/singleton-webhook/singleton-webhook/internal/testutil"
	"github.com/singleton-webhook/singleton-webhook/patches"
)

// parsePolicy binds the policy flags on a fresh flag set, parses args and
// returns the policy they describe.
func parsePolicy(t *testing.T, args ...string) (patches.Policy, error) {
	t.Helper()
	var pf policyFlags
	fs := flag.NewFlagSet("policy", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	pf.bind(fs, testutil.TestVersion)
	if err := fs.Parse(args); err != nil {
		t.Fatalf("parse %q: %v", args, err)
	}
	return pf.policy()
}

func TestPolicyFlagDefaults(t *testing.T) {
	p, err := parsePolicy(t)
	if err != nil {
		t.Fatalf("defaults refused: %v", err)
	}
	want := patches.Policy{DefaultMode: patches.ModeReplicas, DefaultEnforcement: patches.EnforcementMutate, Elector: patches.ElectorOptions{
		Image: patches.DefaultImageRepository + ":" + testutil.TestVersion, Version: testutil.TestVersion,
		LeaseDuration: 15 * time.Second, RenewDeadline: 10 * time.Second, RetryPeriod: 2 * time.Second,
	}}
	if p != want {
		t.Errorf("policy:\n got %+v\nwant %+v", p, want)
	}
}

func TestPolicyFlagsElector(t *testing.T) {
	p, err := parsePolicy(t, "--default-mode=election", "--elector-image=registry.example/elector:1",
		"--elector-native-sidecar=false", "--default-lease-duration=30s", "--default-renew-deadline=20s", "--default-retry-period=5s")
	if err != nil {
		t.Fatalf("refused: %v", err)
	}
	e := p.Elector
	if p.DefaultMode != patches.ModeElection || e.Image != "registry.example/elector:1" || !e.PlainContainer ||
		e.LeaseDuration != 30*time.Second || e.RenewDeadline != 20*time.Second || e.RetryPeriod != 5*time.Second {
		t.Errorf("policy %+v does not reflect the flags", p)
	}
}

func TestPolicyFlagsRefused(t *testing.T) {
	const timings = "--default-lease-duration, --default-renew-deadline, --default-retry-period: "
	tests := map[string]struct {
		args []string
		want string
	}{
		"an empty elector image": {
			[]string{"--elector-image="}, "--elector-image must not be empty"},
		"a zero retry period, not taken for the default": {
			[]string{"--default-retry-period=0s"}, timings + "retry period 0s must be greater than zero"},
		"a lease duration not above the renew deadline": {
			[]string{"--default-lease-duration=10s"}, timings + "renew deadline 10s must be at most lease duration 10s − 450ms = 9.55s (2% of the lease duration for clocks running at different rates, plus 250ms for the sidecar to drop its signals)"},
		"a renew deadline within the jitter of the retry period": {
			[]string{"--default-retry-period=9s"}, timings + "renew deadline 10s must be greater than 1s + 1.2 × retry period 9s = 11.8s (the Lease record shows renewals to the second: the leader must renew within its renew deadline less a second)"},
		"an unknown default enforcement": {
			[]string{"--default-enforcement=reject"}, `--default-enforcement: annotation singleton.dev/enforcement: "reject" is not an enforcement; use "mutate" (rewrite and warn) or "deny" (refuse what is not a singleton as written)`},
		"a lease duration in fractions of a second": {
			[]string{"--default-lease-duration=15500ms"}, timings + "lease duration 15.5s must be a whole number of seconds (the Lease stores seconds)"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := parsePolicy(t, tc.args...)
			if err == nil || err.Error() != tc.want {
				t.Fatalf("got %v, want %s", err, tc.want)
			}
			var ec *ExitError
			if !errors.As(err, &ec) || ec.Code != 2 {
				t.Errorf("error %v is not a usage error (exit status 2)", err)
			}
		})
	}
}
