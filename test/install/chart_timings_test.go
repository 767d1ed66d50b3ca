//go:build integration

package install

import (
	"fmt"
	"testing"
	"time"

	"github.com/singleton-webhook/singleton-webhook/internal/sidecar"
)

// TestChartTimingsFollowTheSidecarRule checks the chart's own check of the
// election timings against the rule's owner, sidecar.Timings.Validate, on
// both sides of each bound: helm template accepts exactly the timings the
// webhook and its sidecar accept, so a value the chart lets through never
// stops the webhook from starting, and the chart refuses nothing that works.
func TestChartTimingsFollowTheSidecarRule(t *testing.T) {
	cases, accepted := timingCases(), 0
	for _, c := range cases {
		if c.Validate() == nil {
			accepted++
		}
	}
	if accepted == 0 || accepted == len(cases) {
		t.Fatalf("%d of %d cases pass the rule: they must lie on both sides of its bounds", accepted, len(cases))
	}
	for _, c := range cases {
		name := fmt.Sprintf("lease %s renew %s retry %s", c.LeaseDuration, c.RenewDeadline, c.RetryPeriod)
		t.Run(name, func(t *testing.T) {
			verr := c.Validate()
			out, herr := helm(t, "template", "singleton-webhook", chartDir, "--namespace", systemNamespace,
				"--set", "elector.leaseDuration="+millis(c.LeaseDuration),
				"--set", "elector.renewDeadline="+millis(c.RenewDeadline),
				"--set", "elector.retryPeriod="+millis(c.RetryPeriod))
			switch {
			case verr == nil && herr != nil:
				t.Errorf("the sidecar accepts these timings, the chart refuses them:\n%s", out)
			case verr != nil && herr == nil:
				t.Errorf("the chart accepts timings the sidecar refuses: %v", verr)
			}
		})
	}
}

// timingCases are timings on each side of the rule's bounds, to the
// millisecond (the chart's values are written in milliseconds at most).
func timingCases() []sidecar.Timings {
	var cases []sidecar.Timings
	for _, lease := range []time.Duration{2 * time.Second, 15 * time.Second, 60 * time.Second, 137 * time.Second} {
		maxRenew := sidecar.MaxRenewDeadline(lease).Truncate(time.Millisecond)
		for _, renew := range []time.Duration{maxRenew, maxRenew + time.Millisecond} {
			// The longest retry period this renew deadline allows, and the next.
			retry := time.Duration(float64(renew-sidecar.MinRenewDeadline(0)) / 1.2).Truncate(time.Millisecond)
			for _, r := range []time.Duration{retry - time.Millisecond, retry, retry + time.Millisecond, retry + 2*time.Millisecond} {
				if r > 0 {
					cases = append(cases, sidecar.Timings{LeaseDuration: lease, RenewDeadline: renew, RetryPeriod: r})
				}
			}
		}
	}
	// Not whole seconds, and zero.
	return append(cases,
		sidecar.Timings{LeaseDuration: 15500 * time.Millisecond, RenewDeadline: 10 * time.Second, RetryPeriod: 2 * time.Second},
		sidecar.Timings{LeaseDuration: 15 * time.Second, RenewDeadline: 10 * time.Second})
}

// millis writes d as the chart takes it, in milliseconds.
func millis(d time.Duration) string {
	return fmt.Sprintf("%dms", d.Milliseconds())
}
