package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/singleton-webhook/singleton-webhook/certs"
	"github.com/singleton-webhook/singleton-webhook/webhook"
)

// runStandalone runs the admission server, the probes and the metrics
// (plain HTTP) without a manager. When ctx is done it stops accepting
// connections, lets in-flight reviews finish, and returns within
// c.GracefulShutdown.
func runStandalone(ctx context.Context, c *ServeConfig) error {
	srv := newWebhookServer(c)
	m, err := webhook.NewMetrics(crmetrics.Registry)
	if err != nil {
		return err
	}
	h := webhook.NewHandlers(c.Policy, nil)
	h.Metrics = m
	h.Register(srv)
	defer startCert(ctx, c.Cert)()

	probes := http.NewServeMux()
	probes.Handle("/healthz", http.StripPrefix("/healthz", &healthz.Handler{Checks: map[string]healthz.Checker{"ping": healthz.Ping}}))
	probes.Handle("/readyz", http.StripPrefix("/readyz", &healthz.Handler{Checks: readyChecks(srv, c.Cert)}))
	servers := map[string]http.Handler{}
	if c.ProbeAddress != "0" {
		servers[c.ProbeAddress] = probes
	}
	if c.MetricsAddress != "0" {
		metrics := http.NewServeMux()
		metrics.Handle("/metrics", promhttp.HandlerFor(crmetrics.Registry, promhttp.HandlerOpts{ErrorHandling: promhttp.HTTPErrorOnError}))
		servers[c.MetricsAddress] = metrics
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
		shutdownAll(side, c.GracefulShutdown)
		return fmt.Errorf("serve admission: %w", err)
	case err := <-sideErr:
		cancel()
		shutdownAll(side, c.GracefulShutdown)
		<-hookDone
		return err
	}
	return drain(hookDone, side, c.GracefulShutdown)
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

// startCert keeps the serving certificate current in the background; the
// returned function stops it and waits.
func startCert(ctx context.Context, cert certs.Source) func() {
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
