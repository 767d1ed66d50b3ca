package controllers

import (
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/types"
)

// GateMetrics are the gate controller's metrics. A nil *GateMetrics records
// nothing.
type GateMetrics struct {
	wait    prometheus.Histogram
	waiting prometheus.Gauge

	mu     sync.Mutex
	groups map[types.NamespacedName]int
}

// NewGateMetrics registers the gate controller's metrics with reg; metrics
// registered already (a manager started again in one process) are reused.
func NewGateMetrics(reg prometheus.Registerer) (*GateMetrics, error) {
	m := &GateMetrics{
		wait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "singleton_gate_wait_seconds",
			Help: "How long Pods of replicas-mode singletons waited, from creation until their scheduling gate was removed.",
			// From an immediate release to a node that stayed lost for an hour.
			Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600},
		}),
		waiting: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "singleton_gate_waiting_pods",
			Help: "Pods of replicas-mode singletons waiting for another Pod of theirs to be gone. A value that stays above 0 usually means a Pod stuck Terminating on an unreachable node.",
		}),
		groups: map[types.NamespacedName]int{},
	}
	if err := reg.Register(m.wait); err != nil {
		are, ok := err.(prometheus.AlreadyRegisteredError)
		if !ok {
			return nil, fmt.Errorf("register gate metrics: %w", err)
		}
		m.wait = are.ExistingCollector.(prometheus.Histogram)
	}
	if err := reg.Register(m.waiting); err != nil {
		are, ok := err.(prometheus.AlreadyRegisteredError)
		if !ok {
			return nil, fmt.Errorf("register gate metrics: %w", err)
		}
		m.waiting = are.ExistingCollector.(prometheus.Gauge)
	}
	return m, nil
}

func (m *GateMetrics) observeWait(d time.Duration) {
	if m != nil {
		m.wait.Observe(d.Seconds())
	}
}

// setWaiting records that n Pods of a group wait.
func (m *GateMetrics) setWaiting(group types.NamespacedName, n int) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if n == 0 {
		delete(m.groups, group)
	} else {
		m.groups[group] = n
	}
	total := 0
	for _, v := range m.groups {
		total += v
	}
	m.waiting.Set(float64(total))
}
