package sidecar

import (
	"fmt"
	"time"

	"k8s.io/client-go/tools/leaderelection"
)

// The margins of the timing rule; see Timings.
const (
	// RecordGranularity is the resolution at which a standby sees the
	// Lease record change: client-go compares records as JSON, where the
	// renew time has whole seconds, so renewals within one second of the
	// leader's clock look alike to a standby.
	RecordGranularity = time.Second
	// ClockRateMargin is the difference in rate the rule tolerates between
	// the leader's clock and a standby's: 1% each way, twenty times the
	// 500 ppm an NTP-disciplined clock is allowed.
	ClockRateMargin = 0.01
	// SignalMargin is the time the rule leaves the sidecar, after its
	// deadline, to take its signals down on a loaded node.
	SignalMargin = 250 * time.Millisecond
)

// Timings are the three election timings.
//
// The leader's signals end at its deadline: renewDeadline after it sent
// the first write of the Lease record that its last successful renewal
// wrote (the record shows seconds, so a standby may have seen that record
// as early as the first write of the second; elector's package
// documentation has the argument). A standby takes over only after
// leaseDuration without seeing the record change. The rule:
//
//   - all three positive, leaseDuration whole seconds (the Lease stores
//     seconds);
//   - renewDeadline <= leaseDuration - MaxRenewDeadline's margin
//     (2 × ClockRateMargin × leaseDuration + SignalMargin): the leader's
//     deadline comes before any standby's takeover even when the clocks
//     run at rates 1% apart;
//   - renewDeadline > RecordGranularity + JitterFactor × retryPeriod: the
//     leader's deadline counts from the first renewal of a second, so the
//     renewals that keep the signals up must come within renewDeadline
//     minus one second; client-go's JitterFactor (1.2) leaves room for a
//     slow round trip, as in client-go's own rule renewDeadline >
//     JitterFactor × retryPeriod, which this implies.
type Timings struct {
	// LeaseDuration is how long a standby waits, after it last saw the
	// Lease record change, before it takes the Lease over.
	LeaseDuration time.Duration
	// RenewDeadline is how long the leader keeps its signals after the
	// first write of the record it last renewed.
	RenewDeadline time.Duration
	// RetryPeriod is the pause between two attempts to acquire or renew.
	RetryPeriod time.Duration
}

// DefaultTimings are DefaultLeaseDuration, DefaultRenewDeadline and
// DefaultRetryPeriod.
func DefaultTimings() Timings {
	return Timings{LeaseDuration: DefaultLeaseDuration, RenewDeadline: DefaultRenewDeadline, RetryPeriod: DefaultRetryPeriod}
}

// Field names one of the three timings in a TimingError.
type Field string

// The fields of Timings, as TimingError names them.
const (
	FieldLeaseDuration Field = "lease duration"
	FieldRenewDeadline Field = "renew deadline"
	FieldRetryPeriod   Field = "retry period"
)

// TimingError is a violation of the timing rule. Field is the timing at
// fault; Other, when set, is the timing it was compared with, so that a
// caller knowing which of the two the user wrote can blame that one
// (Reason and OtherReason say the same thing from either side).
type TimingError struct {
	Field       Field
	Value       time.Duration
	Reason      string // completes "<field> <value> ..."
	Other       Field  // empty when the fault is Field's alone
	OtherValue  time.Duration
	OtherReason string // completes "<other> <value> ..."
}

func (e *TimingError) Error() string {
	return fmt.Sprintf("%s %s %s", e.Field, e.Value, e.Reason)
}

// MaxRenewDeadline is the longest renew deadline the rule accepts for a
// lease duration.
func MaxRenewDeadline(leaseDuration time.Duration) time.Duration {
	return leaseDuration - margin(leaseDuration)
}

// margin is what MaxRenewDeadline keeps between the leader's deadline and
// the earliest takeover.
func margin(leaseDuration time.Duration) time.Duration {
	return time.Duration(2*ClockRateMargin*float64(leaseDuration)) + SignalMargin
}

// MinRenewDeadline is the bound a renew deadline must exceed for a retry
// period.
func MinRenewDeadline(retryPeriod time.Duration) time.Duration {
	return RecordGranularity + time.Duration(leaderelection.JitterFactor*float64(retryPeriod))
}

// Validate checks the timing rule; the error is a *TimingError.
func (t Timings) Validate() error {
	for _, f := range []struct {
		name  Field
		value time.Duration
	}{{FieldLeaseDuration, t.LeaseDuration}, {FieldRenewDeadline, t.RenewDeadline}, {FieldRetryPeriod, t.RetryPeriod}} {
		if f.value <= 0 {
			return &TimingError{Field: f.name, Value: f.value, Reason: "must be greater than zero"}
		}
	}
	if t.LeaseDuration%time.Second != 0 {
		return &TimingError{Field: FieldLeaseDuration, Value: t.LeaseDuration,
			Reason: "must be a whole number of seconds (the Lease stores seconds)"}
	}
	if limit := MaxRenewDeadline(t.LeaseDuration); t.RenewDeadline > limit {
		m := margin(t.LeaseDuration)
		why := fmt.Sprintf("(%g%% of the lease duration for clocks running at different rates, plus %s for the sidecar to drop its signals)",
			200*ClockRateMargin, SignalMargin)
		return &TimingError{
			Field: FieldRenewDeadline, Value: t.RenewDeadline,
			Reason: fmt.Sprintf("must be at most %s %s − %s = %s %s", FieldLeaseDuration, t.LeaseDuration, m, limit, why),
			Other:  FieldLeaseDuration, OtherValue: t.LeaseDuration,
			OtherReason: fmt.Sprintf("must be at least %s %s + %s = %s %s",
				FieldRenewDeadline, t.RenewDeadline, m, t.RenewDeadline+m, why),
		}
	}
	if limit := MinRenewDeadline(t.RetryPeriod); t.RenewDeadline <= limit {
		return &TimingError{
			Field: FieldRenewDeadline, Value: t.RenewDeadline,
			Reason: fmt.Sprintf("must be greater than %s + %g × %s %s = %s (the Lease record shows renewals to the second: the leader must renew within its renew deadline less a second)",
				RecordGranularity, leaderelection.JitterFactor, FieldRetryPeriod, t.RetryPeriod, limit),
			Other: FieldRetryPeriod, OtherValue: t.RetryPeriod,
			OtherReason: fmt.Sprintf("is too long: %s + %g × %s = %s must be less than %s %s (the Lease record shows renewals to the second: the leader must renew within its renew deadline less a second)",
				RecordGranularity, leaderelection.JitterFactor, t.RetryPeriod, limit, FieldRenewDeadline, t.RenewDeadline),
		}
	}
	return nil
}
