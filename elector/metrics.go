package elector

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the sidecar's Prometheus metrics, on a registry of its own so
// that nothing else in the process (client-go) adds to /metrics.
type metrics struct {
	registry      *prometheus.Registry
	isLeader      prometheus.Gauge
	transitions   prometheus.Counter
	renewFailures prometheus.Counter
	leaseReleases prometheus.Counter
}

func newMetrics() *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		isLeader: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "singleton_elector_is_leader",
			Help: "1 while this candidate leads (its leader signals are up), else 0.",
		}),
		transitions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "singleton_elector_leadership_transitions_total",
			Help: "Times this candidate became leader or stopped leading.",
		}),
		renewFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "singleton_elector_lease_renew_failures_total",
			Help: "Failed attempts of the leader to renew its Lease.",
		}),
		leaseReleases: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "singleton_elector_lease_releases_total",
			Help: "Times this candidate released the Lease for a successor.",
		}),
	}
	m.registry.MustRegister(m.isLeader, m.transitions, m.renewFailures, m.leaseReleases,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{Registry: m.registry})
}

func (m *metrics) setLeader(leading bool) {
	v := 0.0
	if leading {
		v = 1
	}
	m.isLeader.Set(v)
	m.transitions.Inc()
}
