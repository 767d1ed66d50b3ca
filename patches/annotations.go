package patches

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Annotation keys of the contract. Users write the trigger, the mode and the
// election tuning; the webhook writes the original-* bookkeeping and the
// pod-template injection marker.
const (
	// AnnotationSingleton is the trigger: "true" enforces, "false" or absent
	// leaves the Deployment alone, anything else is refused.
	AnnotationSingleton = "singleton"
	// Prefix starts every other annotation key of the product.
	Prefix = "singleton.dev/"
	// AnnotationMode selects how the Deployment is made a singleton.
	AnnotationMode = Prefix + "mode"
	// AnnotationLeaseName names the election Lease (default: the Deployment name).
	AnnotationLeaseName = Prefix + "lease-name"
	// AnnotationLeaseDuration is the election lease duration (a Go duration).
	AnnotationLeaseDuration = Prefix + "lease-duration"
	// AnnotationRenewDeadline is the election renew deadline (a Go duration).
	AnnotationRenewDeadline = Prefix + "renew-deadline"
	// AnnotationRetryPeriod is the election retry period (a Go duration).
	AnnotationRetryPeriod = Prefix + "retry-period"
	// AnnotationLeaderService asks for a Service that selects only the leader.
	AnnotationLeaderService = Prefix + "leader-service"
	// AnnotationOriginalReplicas records the replicas the user asked for.
	AnnotationOriginalReplicas = Prefix + "original-replicas"
	// AnnotationOriginalStrategy records the strategy the user asked for.
	AnnotationOriginalStrategy = Prefix + "original-strategy"
	// AnnotationInjected marks a pod template the elector was injected into;
	// its value is the injecting webhook's version.
	AnnotationInjected = Prefix + "injected"
	// AnnotationReleased, "true", marks a singleton that `singleton-webhook
	// release` let go of before an uninstall or an opt-out: the webhook and
	// its controllers treat it as not a singleton (they strip the gate, pin
	// nothing) until the annotation is removed. A separate key, not
	// singleton: "false", so that a GitOps sync of the manifest, which
	// holds the trigger but not this key, cannot undo the release while the
	// webhook is still installed.
	AnnotationReleased = Prefix + "released"
)

// Mode is how a Deployment is made a singleton.
type Mode string

const (
	// ModeReplicas pins the Deployment to one replica with a Recreate
	// strategy: the out-of-application lock.
	ModeReplicas Mode = "replicas"
	// ModeElection keeps the replicas and injects the leader-election
	// sidecar: the in-application lock.
	ModeElection Mode = "election"
)

// Modes lists the accepted values of AnnotationMode.
var modes = []Mode{ModeReplicas, ModeElection}

// knownKeys are the singleton.dev/ annotation keys a Deployment may carry.
var knownKeys = map[string]bool{
	AnnotationMode:             true,
	AnnotationEnforcement:      true,
	AnnotationLeaseName:        true,
	AnnotationLeaseDuration:    true,
	AnnotationRenewDeadline:    true,
	AnnotationRetryPeriod:      true,
	AnnotationLeaderService:    true,
	AnnotationOriginalReplicas: true,
	AnnotationOriginalStrategy: true,
	AnnotationReleased:         true,
}

// AnnotationError is a refusal caused by what the user wrote in an
// annotation. Its message names the key, the bad value and what is accepted,
// so the admission denial tells the user exactly what to fix.
type AnnotationError struct {
	// Key is the annotation key at fault.
	Key string
	// Value is the value the user wrote.
	Value string
	// Reason says what is wrong and what would be accepted.
	Reason string
}

// Error implements error.
func (e *AnnotationError) Error() string {
	key, value := e.Key, strconv.Quote(e.Value)
	if len(key) > maxQuoted {
		key = fmt.Sprintf("%s… (%d bytes)", strings.ToValidUTF8(key[:maxQuoted], ""), len(key))
	}
	if len(e.Value) > maxQuoted {
		value = fmt.Sprintf("%q… (%d bytes)", strings.ToValidUTF8(e.Value[:maxQuoted], ""), len(e.Value))
	}
	return fmt.Sprintf("annotation %s: %s %s", key, value, e.Reason)
}

// maxQuoted is the longest key or value an error message quotes in full.
// Valid keys are at most 316 bytes; a value the size of a megabyte would
// only bloat the admission answer and the logs.
const maxQuoted = 320

// ParseMode validates the value of AnnotationMode; an empty value selects def.
func ParseMode(value string, def Mode) (Mode, error) {
	if value == "" {
		return def, nil
	}
	for _, m := range modes {
		if Mode(value) == m {
			return m, nil
		}
	}
	return "", &AnnotationError{Key: AnnotationMode, Value: value,
		Reason: fmt.Sprintf("is not a mode; use one of: %s", joinModes())}
}

// Enabled reports whether the trigger annotation asks for enforcement. A
// value other than "true" or "false" is an error, never a silent "no".
func Enabled(annotations map[string]string) (bool, error) {
	v, ok := annotations[AnnotationSingleton]
	if !ok {
		return false, nil
	}
	switch v {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, &AnnotationError{Key: AnnotationSingleton, Value: v,
		Reason: `is not accepted; use "true" to enforce or "false" to opt out (exact, lower case)`}
}

// Released reports whether a Deployment's annotations carry the release
// marker, AnnotationReleased: "true".
func Released(annotations map[string]string) bool {
	return annotations[AnnotationReleased] == "true"
}

// checkReleased validates AnnotationReleased: only "true" is accepted, so
// a typo never silently disables enforcement.
func checkReleased(annotations map[string]string) error {
	v, ok := annotations[AnnotationReleased]
	if !ok || v == "true" {
		return nil
	}
	return &AnnotationError{Key: AnnotationReleased, Value: v,
		Reason: `is not accepted; "true" (written by singleton-webhook release) lets go of the singleton, remove the annotation to enforce it again`}
}

// checkKeys refuses singleton.dev/ keys the product does not know, so a typo
// such as singleton.dev/mdoe never silently falls back to a default.
func checkKeys(annotations map[string]string) error {
	var unknown []string
	for k := range annotations {
		if strings.HasPrefix(k, Prefix) && !knownKeys[k] {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	sort.Strings(unknown)
	k := unknown[0]
	reason := "is set on an unknown annotation key"
	if s := closestKey(k); s != "" {
		reason += fmt.Sprintf("; did you mean %s?", s)
	} else {
		reason += fmt.Sprintf("; known keys: %s", strings.Join(sortedKnownKeys(), ", "))
	}
	return &AnnotationError{Key: k, Value: annotations[k], Reason: reason}
}

func joinModes() string {
	s := make([]string, len(modes))
	for i, m := range modes {
		s[i] = string(m)
	}
	return strings.Join(s, ", ")
}

func sortedKnownKeys() []string {
	keys := make([]string, 0, len(knownKeys))
	for k := range knownKeys {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// closestKey returns the known key within edit distance 3 of k, if any.
func closestKey(k string) string {
	best, bestDist := "", 4
	for _, known := range sortedKnownKeys() {
		// The distance is at least the difference in length: a hostile key
		// megabytes long must not cost a quadratic computation.
		if n := len(k) - len(known); n >= bestDist || -n >= bestDist {
			continue
		}
		if d := editDistance(k, known); d < bestDist {
			best, bestDist = known, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
