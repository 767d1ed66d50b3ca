package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	ctrlwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/singleton-webhook/singleton-webhook/webhook"
)

// readyChecks are the readiness checks of serve: the admission server
// completes a TLS handshake (so a certificate is being served), and, with
// certificate files, those files held a valid certificate.
func readyChecks(srv ctrlwebhook.Server, cert *webhook.ServingCert) map[string]healthz.Checker {
	checks := map[string]healthz.Checker{"webhook": srv.StartedChecker()}
	if cert != nil {
		checks["serving-cert"] = cert.Check
	}
	return checks
}

// startServingCert loads and watches the serving certificate files in the
// background; the returned function stops it and waits. A nil cert (the
// in-memory certificate of --self-signed) has nothing to start.
func startServingCert(ctx context.Context, cert *webhook.ServingCert) func() {
	if cert == nil {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := cert.Start(ctx); err != nil {
			logf.FromContext(ctx).Error(err, "watch serving certificate")
		}
	}()
	return func() { cancel(); <-done }
}

// serveStandalone runs the admission server, the probes and the metrics
// without a manager. When ctx is done it stops accepting connections, lets
// in-flight reviews finish, and returns within --graceful-shutdown-timeout.
func serveStandalone(ctx context.Context, f *serveFlags, srv ctrlwebhook.Server, h webhook.Handlers, cert *webhook.ServingCert) error {
	// A registry of its own: controller-runtime's global one still holds
	// the admission server's request metrics, served alongside.
	reg := prometheus.NewRegistry()
	m, err := webhook.NewMetrics(reg)
	if err != nil {
		return err
	}
	h.Metrics = m
	h.Register(srv)

	probes := http.NewServeMux()
	probes.Handle("/healthz", http.StripPrefix("/healthz", &healthz.Handler{Checks: map[string]healthz.Checker{"ping": healthz.Ping}}))
	probes.Handle("/readyz", http.StripPrefix("/readyz", &healthz.Handler{Checks: readyChecks(srv, cert)}))
	servers := map[string]http.Handler{f.probeAddress: probes}
	if f.metricsAddress != "0" {
		metrics := http.NewServeMux()
		metrics.Handle("/metrics", promhttp.HandlerFor(prometheus.Gatherers{reg, withoutOurs(crmetrics.Registry)},
			promhttp.HandlerOpts{ErrorHandling: promhttp.HTTPErrorOnError}))
		servers[f.metricsAddress] = metrics
	}
	side, err := listenAll(servers)
	if err != nil {
		return err
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	hookDone := make(chan error, 1)
	go func() { hookDone <- srv.Start(ctx) }()
	sideErr := make(chan error, len(side))
	for _, s := range side {
		go func() { sideErr <- s.serve() }()
	}
	select {
	case <-ctx.Done():
	case err := <-hookDone:
		shutdownAll(side, f.gracefulStop)
		return fmt.Errorf("serve admission: %w", err)
	case err := <-sideErr:
		cancel()
		shutdownAll(side, f.gracefulStop)
		<-hookDone
		return err
	}
	return drain(hookDone, side, f.gracefulStop)
}

// drain waits for the admission server, whose context is done, to finish
// its in-flight reviews, and stops the probe and metrics servers, all within
// grace.
func drain(hookDone <-chan error, side []*sideServer, grace time.Duration) error {
	timer := time.NewTimer(grace)
	defer timer.Stop()
	go shutdownAll(side, grace)
	select {
	case err := <-hookDone:
		if err != nil {
			return fmt.Errorf("serve admission: %w", err)
		}
		return nil
	case <-timer.C:
		return fmt.Errorf("shut down: in-flight reviews did not finish within the grace period of %s", grace)
	}
}

// sideServer is a plain-HTTP server of serve (probes, metrics).
type sideServer struct {
	srv *http.Server
	l   net.Listener
}

func (s *sideServer) serve() error {
	if err := s.srv.Serve(s.l); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve %s: %w", s.l.Addr(), err)
	}
	return nil
}

// listenAll binds every address first, so a taken port fails serve at once.
func listenAll(handlers map[string]http.Handler) ([]*sideServer, error) {
	var out []*sideServer
	for addr, h := range handlers {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			for _, s := range out {
				_ = s.l.Close()
			}
			return nil, fmt.Errorf("listen on %s: %w", addr, err)
		}
		out = append(out, &sideServer{l: l, srv: &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}})
	}
	return out, nil
}

// shutdownAll stops the servers, letting requests in flight finish within grace.
func shutdownAll(side []*sideServer, grace time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	var wg sync.WaitGroup
	for _, s := range side {
		wg.Go(func() { _ = s.srv.Shutdown(ctx) })
	}
	wg.Wait()
}

// withoutOurs gathers g without the product's own metric families. In a
// process that also ran `serve` in manager mode (tests do), controller-
// runtime's global registry holds a second set of them, which would make
// every scrape fail as duplicates.
func withoutOurs(g prometheus.Gatherer) prometheus.Gatherer {
	return prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		mfs, err := g.Gather()
		return slices.DeleteFunc(mfs, func(mf *dto.MetricFamily) bool {
			return strings.HasPrefix(mf.GetName(), webhook.MetricsPrefix)
		}), err
	})
}
