package sidecar

import (
	"errors"
	"testing"
	"time"
)

func TestTimingsValidate(t *testing.T) {
	const s, ms = time.Second, time.Millisecond
	tests := map[string]struct {
		t    Timings
		want string // empty: valid
	}{
		"the production defaults are valid":                           {DefaultTimings(), ""},
		"the tightest lease with the longest renew deadline is valid": {Timings{2 * s, 1710 * ms, 590 * ms}, ""},
		"2s/1.5s/300ms are valid and safe":                            {Timings{2 * s, 1500 * ms, 300 * ms}, ""},
		"a renew deadline past the margin fails": {Timings{2 * s, 1711 * ms, 300 * ms},
			"renew deadline 1.711s must be at most lease duration 2s − 290ms = 1.71s (2% of the lease duration for clocks running at different rates, plus 250ms for the sidecar to drop its signals)"},
		"a lease equal to the renew deadline fails": {Timings{10 * s, 10 * s, 2 * s},
			"renew deadline 10s must be at most lease duration 10s − 450ms = 9.55s (2% of the lease duration for clocks running at different rates, plus 250ms for the sidecar to drop its signals)"},
		"a renew deadline within a second and 1.2 retries fails": {Timings{15 * s, 3400 * ms, 2 * s},
			"renew deadline 3.4s must be greater than 1s + 1.2 × retry period 2s = 3.4s (the Lease record shows renewals to the second: the leader must renew within its renew deadline less a second)"},
		"a renew deadline just above a second and 1.2 retries passes": {Timings{15 * s, 3401 * ms, 2 * s}, ""},
		"a one-second lease leaves no room":                           {Timings{1 * s, 700 * ms, 100 * ms}, "renew deadline 700ms must be greater than 1s + 1.2 × retry period 100ms = 1.12s (the Lease record shows renewals to the second: the leader must renew within its renew deadline less a second)"},
		"a zero lease duration fails":                                 {Timings{0, 10 * s, 2 * s}, "lease duration 0s must be greater than zero"},
		"a negative renew deadline fails":                             {Timings{15 * s, -s, 2 * s}, "renew deadline -1s must be greater than zero"},
		"a zero retry period fails":                                   {Timings{15 * s, 10 * s, 0}, "retry period 0s must be greater than zero"},
		"a fractional lease duration fails": {Timings{2500 * ms, 2 * s, s},
			"lease duration 2.5s must be a whole number of seconds (the Lease stores seconds)"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := tc.t.Validate()
			got := ""
			if err != nil {
				got = err.Error()
				var te *TimingError
				if !errors.As(err, &te) {
					t.Errorf("error %T is not a *TimingError", err)
				}
			}
			if got != tc.want {
				t.Errorf("Validate(%+v):\n got %q\nwant %q", tc.t, got, tc.want)
			}
		})
	}
}

// TestTimingErrorBlamesEitherSide checks that a relation names both sides,
// so a caller can blame the one the user wrote.
func TestTimingErrorBlamesEitherSide(t *testing.T) {
	var te *TimingError
	if !errors.As(Timings{2 * time.Second, 1800 * time.Millisecond, 300 * time.Millisecond}.Validate(), &te) {
		t.Fatal("a renew deadline past the margin was accepted")
	}
	if te.Other != FieldLeaseDuration || te.OtherValue != 2*time.Second {
		t.Errorf("other side %q %s, want the lease duration 2s", te.Other, te.OtherValue)
	}
	want := "must be at least renew deadline 1.8s + 290ms = 2.09s (2% of the lease duration for clocks running at different rates, plus 250ms for the sidecar to drop its signals)"
	if te.OtherReason != want {
		t.Errorf("other reason:\n got %q\nwant %q", te.OtherReason, want)
	}
}
