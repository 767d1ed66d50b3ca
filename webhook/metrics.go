package webhook

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	admissionv1 "k8s.io/api/admission/v1"

	"github.com/singleton-webhook/singleton-webhook/patches"
)

// Metric names, served at /metrics of --metrics-bind-address. Latencies are
// controller-runtime's: LatencyMetric, by webhook path.
const (
	// MetricsPrefix starts the name of every metric of the webhook.
	MetricsPrefix = "singleton_webhook_"
	// AdmissionsMetric counts answered reviews by resource, operation, mode,
	// outcome and reason.
	AdmissionsMetric = MetricsPrefix + "admissions_total"
	// LatencyMetric is controller-runtime's latency histogram of the
	// requests of a webhook server, by path (label webhook), from the first
	// byte of the handler to the written answer.
	LatencyMetric = "controller_runtime_webhook_latency_seconds"
)

// Values of the resource label: the webhook entry a request came through.
const (
	ResourceDeployments = "deployments"
	ResourceScale       = "deployments/scale"
)

// Values of the outcome label.
const (
	// OutcomeMutated: allowed with a patch.
	OutcomeMutated = "mutated"
	// OutcomeUnchanged: a singleton, already in shape; allowed, no patch.
	OutcomeUnchanged = "unchanged"
	// OutcomeDenied: refused because of what the user wrote.
	OutcomeDenied = "denied"
	// OutcomeErrored: not understood (transport fault, undecodable review
	// or object) or failed on our side. The reason label says which.
	OutcomeErrored = "errored"
	// OutcomeSkipped: allowed untouched without looking further. The reason
	// label says why.
	OutcomeSkipped = "skipped"
)

// Values of the reason label of skipped reviews.
const (
	ReasonNotSingleton      = "not-singleton"
	ReasonOperation         = "operation"
	ReasonKind              = "kind"
	ReasonAtMostOne         = "at-most-one-replica"
	ReasonNotReplicasMode   = "not-replicas-mode"
	ReasonParentNotChecked  = "parent-not-checked"
	ReasonParentLookup      = "parent-lookup-failed"
	ReasonParentAnnotations = "parent-invalid-annotations"
)

// Values of the reason label of errored reviews.
const (
	ReasonMethod      = "method"
	ReasonContentType = "content-type"
	ReasonTooLarge    = "too-large"
	ReasonEmptyBody   = "empty-body"
	ReasonReadBody    = "read-body"
	ReasonMalformed   = "malformed-review"
	ReasonWrongReview = "wrong-review"
	ReasonNoRequest   = "no-request"
	ReasonDecode      = "decode"
	ReasonInternal    = "internal"
)

// modeNone is the mode label when no singleton mode applied.
const modeNone = "none"

// opUnknown is the operation label of a request that has none we know.
const opUnknown = "unknown"

// Metrics records admission outcomes. Create it once with
// NewMetrics and hand it to the HTTP handlers; a nil *Metrics records nothing
// (the offline commands).
type Metrics struct {
	admissions *prometheus.CounterVec

	// counters caches one counter per label set, so the hot path is a map
	// lookup instead of WithLabelValues' hashing and allocation.
	mu       sync.RWMutex
	counters map[admissionLabels]prometheus.Counter
}

type admissionLabels struct {
	resource, operation, mode, outcome, reason string
}

// NewMetrics creates the collectors and registers them with reg, usually
// sigs.k8s.io/controller-runtime/pkg/metrics.Registry. When reg already holds
// collectors of the same name and shape (a second server in one process),
// those are reused. The counters every healthy cluster produces start at 0.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	admissions := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: AdmissionsMetric,
		Help: "Admission reviews answered, by webhook resource, operation, singleton mode, outcome and reason (skipped and errored only).",
	}, []string{"resource", "operation", "mode", "outcome", "reason"})
	admissions, err := register(reg, admissions)
	if err != nil {
		return nil, err
	}
	m := &Metrics{admissions: admissions, counters: map[admissionLabels]prometheus.Counter{}}
	for _, op := range []admissionv1.Operation{admissionv1.Create, admissionv1.Update} {
		for _, o := range []string{OutcomeMutated, OutcomeUnchanged, OutcomeDenied} {
			m.counter(admissionLabels{ResourceDeployments, string(op), string(patches.ModeReplicas), o, ""})
		}
		m.counter(admissionLabels{ResourceDeployments, string(op), modeNone, OutcomeSkipped, ReasonNotSingleton})
	}
	return m, nil
}

// register registers c, or returns the equal collector reg already holds.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	err := reg.Register(c)
	var are prometheus.AlreadyRegisteredError
	switch {
	case err == nil:
		return c, nil
	case errors.As(err, &are):
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	var zero C
	return zero, fmt.Errorf("register metrics: %w", err)
}

// counter returns the counter of a label set, creating it on first use.
func (m *Metrics) counter(l admissionLabels) prometheus.Counter {
	m.mu.RLock()
	c, ok := m.counters[l]
	m.mu.RUnlock()
	if ok {
		return c
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if c, ok = m.counters[l]; !ok {
		c = m.admissions.WithLabelValues(l.resource, l.operation, l.mode, l.outcome, l.reason)
		m.counters[l] = c
	}
	return c
}

// count records one answered review.
func (m *Metrics) count(resource string, op admissionv1.Operation, o outcome) {
	if m == nil {
		return
	}
	mode := string(o.mode)
	if mode == "" {
		mode = modeNone
	}
	m.counter(admissionLabels{resource, operationLabel(op), mode, o.kind, o.reason}).Inc()
}

// operationLabel bounds the operation label to the values the API server
// sends, whatever a request claims.
func operationLabel(op admissionv1.Operation) string {
	switch op {
	case admissionv1.Create, admissionv1.Update, admissionv1.Delete, admissionv1.Connect:
		return string(op)
	}
	return opUnknown
}

// outcome is what became of one review: its outcome label, the reason of a
// skip or an error, and the singleton mode that applied, if any.
type outcome struct {
	kind   string
	reason string
	mode   patches.Mode
}

type outcomeKey struct{}

// withOutcome returns a context in which handlers record how they decided.
func withOutcome(ctx context.Context, o *outcome) context.Context {
	return context.WithValue(ctx, outcomeKey{}, o)
}

// markSkipped records, for metrics and logs, that a handler let the request
// through without looking further, and why. It does nothing outside the HTTP
// handler (the offline mutate command calls handlers directly).
func markSkipped(ctx context.Context, reason string) {
	if o, ok := ctx.Value(outcomeKey{}).(*outcome); ok {
		o.kind, o.reason = OutcomeSkipped, reason
	}
}

// markMode records the singleton mode a handler applied.
func markMode(ctx context.Context, mode patches.Mode) {
	if o, ok := ctx.Value(outcomeKey{}).(*outcome); ok {
		o.mode = mode
	}
}
