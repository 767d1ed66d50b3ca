package elector

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/leaderelection"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
)

// shutdownTimeout bounds the HTTP server's graceful shutdown.
const shutdownTimeout = 2 * time.Second

// Elector is one candidate: it runs the election and keeps the signals the
// application reads in line with it.
type Elector struct {
	cfg     Config
	client  kubernetes.Interface
	status  *status
	metrics *metrics

	mu      sync.Mutex
	current *term
}

// New returns an Elector for a validated Config.
func New(cfg Config, client kubernetes.Interface) (*Elector, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("elector config: %w", err)
	}
	return &Elector{cfg: cfg, client: client, status: newStatus(cfg.Identity, time.Now()), metrics: newMetrics()}, nil
}

// Run runs one candidate until ctx is done; see Elector.Run.
func Run(ctx context.Context, cfg Config, client kubernetes.Interface) error {
	e, err := New(cfg, client)
	if err != nil {
		return err
	}
	return e.Run(ctx)
}

// Handler serves GET /leader and GET /healthz.
func (e *Elector) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/leader", e.status)
	mux.HandleFunc("/healthz", healthz)
	return mux
}

// MetricsHandler serves GET /metrics and GET /healthz.
func (e *Elector) MetricsHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", e.metrics.handler())
	mux.HandleFunc("/healthz", healthz)
	return mux
}

// Run serves the Handler on the listen address and takes part in the
// election until ctx is done; a candidate that loses the Lease becomes a
// candidate again. When ctx is done it drops the leader signals, releases
// the Lease if it holds it, and returns. It
// returns an error only if it cannot start.
func (e *Elector) Run(ctx context.Context) error {
	log := logf.FromContext(ctx).WithName("elector")
	ctx = logf.IntoContext(ctx, log) // client-go logs through the context as well
	sig := &signals{self: e.cfg.Identity, status: e.status, file: newStateFile(e.cfg.StateDir),
		metrics: e.metrics, log: log}
	if err := checkDir(e.cfg.StateDir); err != nil {
		return err
	}
	if err := sig.reset(); err != nil {
		return err
	}
	srv, err := serve(e.cfg.ListenAddress, e.Handler(), log)
	if err != nil {
		return err
	}
	var msrv *http.Server
	if e.cfg.metricsEnabled() {
		if msrv, err = serve(e.cfg.MetricsAddress, e.MetricsHandler(), log); err != nil {
			if srv != nil {
				_ = srv.Close()
			}
			return err
		}
	}
	var wg sync.WaitGroup
	if e.cfg.WatchLease {
		wg.Go(func() { e.watchLease(ctx) })
	}
	log.Info("Candidate started", "lease", e.cfg.LeaseNamespace+"/"+e.cfg.LeaseName, "identity", e.cfg.Identity)
	for ctx.Err() == nil {
		if err := e.runTerm(ctx, sig); err != nil {
			log.Error(err, "Election failed; retrying")
			sleep(ctx, e.cfg.RetryPeriod)
		}
	}
	sig.standby("shutting down")
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	for _, s := range []*http.Server{srv, msrv} {
		if s != nil {
			_ = s.Shutdown(sctx) // after the signals dropped: /leader says standby to the end
		}
	}
	wg.Wait()
	log.Info("Candidate stopped", "identity", e.cfg.Identity)
	return nil
}

// serve starts an HTTP server on addr, if any.
func serve(addr string, h http.Handler, log logr.Logger) (*http.Server, error) {
	if addr == "" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			log.Error(err, "HTTP server stopped", "address", addr)
		}
	}()
	return srv, nil
}

// runTerm runs client-go's elector once: until it fails to acquire before
// ctx is done, or until it stops leading.
func (e *Elector) runTerm(ctx context.Context, sig *signals) error {
	termCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	t := newTerm(e.cfg.RenewDeadline, sig, cancel)
	inner := &leaseLock{leases: e.client.CoordinationV1().Leases(e.cfg.LeaseNamespace),
		name: e.cfg.LeaseName, ns: e.cfg.LeaseNamespace, identity: e.cfg.Identity}
	le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:            &trackingLock{Interface: inner, term: t, metrics: e.metrics, log: sig.log},
		LeaseDuration:   e.cfg.LeaseDuration,
		RenewDeadline:   e.cfg.RenewDeadline,
		RetryPeriod:     e.cfg.RetryPeriod,
		ReleaseOnCancel: true,
		Name:            e.cfg.LeaseName,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: t.start,
			OnStoppedLeading: func() { t.end("stopped leading") },
			OnNewLeader:      t.observe,
		},
	})
	if err != nil {
		return fmt.Errorf("leader elector: %w", err)
	}
	e.mu.Lock()
	e.current = t
	e.mu.Unlock()
	le.Run(termCtx)
	t.end("election stopped")
	return nil
}

// wake makes a standby try to acquire the Lease now.
func (e *Elector) wake() bool {
	e.mu.Lock()
	t := e.current
	e.mu.Unlock()
	return t != nil && t.wake()
}

// sleep waits for d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
	case <-timer.C:
	}
}
