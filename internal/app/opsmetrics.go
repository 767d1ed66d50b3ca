package app

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	coordinationv1 "k8s.io/api/coordination/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/singleton-webhook/singleton-webhook/certs"
	"github.com/singleton-webhook/singleton-webhook/controllers"
)

// Metrics the chart's alerts and dashboard need beyond the handlers' and
// the gate controller's: the serving certificate's end, and the election
// Leases the webhook made (whether each has a valid leader, and how often
// it changed hands). They are computed at scrape time: the Leases from one
// list request, label-selected, per scrape.
const (
	// CertExpiryMetric is the end of the served certificate (Unix seconds).
	CertExpiryMetric = "singleton_webhook_serving_cert_expiry_timestamp_seconds"
	// LeaseValidMetric is 1 while an election Lease has a holder within its
	// duration, else 0; by namespace and lease.
	LeaseValidMetric = "singleton_election_lease_valid"
	// LeaseTransitionsMetric is the Lease's leaseTransitions: failovers.
	LeaseTransitionsMetric = "singleton_election_lease_transitions_total"
)

// scrapeTimeout bounds the Lease list of one scrape.
const scrapeTimeout = 5 * time.Second

// opsCollector serves those metrics.
type opsCollector struct {
	cert   certs.Source
	reader client.Reader

	expiry, valid, transitions *prometheus.Desc
}

// registerOpsMetrics registers the collector with reg; reader lists the
// Leases (nil: the Lease metrics are not served, as in --standalone).
func registerOpsMetrics(reg prometheus.Registerer, cert certs.Source, reader client.Reader) error {
	c := &opsCollector{cert: cert, reader: reader,
		expiry: prometheus.NewDesc(CertExpiryMetric, "When the certificate the admission server serves ends (Unix time).", nil, nil),
		valid: prometheus.NewDesc(LeaseValidMetric, "1 while the election Lease of a singleton (made by the webhook) has a holder within its lease duration, else 0.",
			[]string{"namespace", "lease"}, nil),
		transitions: prometheus.NewDesc(LeaseTransitionsMetric, "Changes of holder of the election Lease of a singleton (its leaseTransitions): failovers.",
			[]string{"namespace", "lease"}, nil),
	}
	err := reg.Register(c)
	if are := (prometheus.AlreadyRegisteredError{}); errors.As(err, &are) {
		// A serve started again in one process (tests): the newest one's
		// certificate and reader are served, not the first one's.
		reg.Unregister(are.ExistingCollector)
		err = reg.Register(c)
	}
	if err != nil {
		return fmt.Errorf("register metrics: %w", err)
	}
	return nil
}

// Describe implements prometheus.Collector.
func (c *opsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.expiry
	ch <- c.valid
	ch <- c.transitions
}

// Collect implements prometheus.Collector.
func (c *opsCollector) Collect(ch chan<- prometheus.Metric) {
	if tc, err := c.cert.GetCertificate(nil); err == nil && len(tc.Certificate) > 0 {
		leaf := tc.Leaf
		if leaf == nil {
			leaf, _ = x509.ParseCertificate(tc.Certificate[0])
		}
		if leaf != nil {
			ch <- prometheus.MustNewConstMetric(c.expiry, prometheus.GaugeValue, float64(leaf.NotAfter.Unix()))
		}
	}
	if c.reader == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	var leases coordinationv1.LeaseList
	if err := c.reader.List(ctx, &leases, client.MatchingLabels{controllers.ManagedByLabel: controllers.ManagedBy}); err != nil {
		// Not an invalid metric: the metrics server would answer the whole
		// scrape with an error. The Lease series are absent from this one
		// scrape; the no-leader alert only waits a scrape longer.
		logf.Log.WithName("metrics").V(1).Info("list election leases for the metrics", "error", err.Error())
		return
	}
	now := time.Now()
	for _, l := range leases.Items {
		valid := 0.0
		s := l.Spec
		if s.HolderIdentity != nil && *s.HolderIdentity != "" && s.RenewTime != nil && s.LeaseDurationSeconds != nil &&
			now.Before(s.RenewTime.Add(time.Duration(*s.LeaseDurationSeconds)*time.Second)) {
			valid = 1
		}
		var transitions float64
		if s.LeaseTransitions != nil {
			transitions = float64(*s.LeaseTransitions)
		}
		ch <- prometheus.MustNewConstMetric(c.valid, prometheus.GaugeValue, valid, l.Namespace, l.Name)
		ch <- prometheus.MustNewConstMetric(c.transitions, prometheus.CounterValue, transitions, l.Namespace, l.Name)
	}
}
