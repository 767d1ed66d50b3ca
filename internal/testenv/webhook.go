package testenv

import (
	"context"
	"crypto/tls"
	"fmt"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	ctrlwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/singleton-webhook/singleton-webhook/controllers"
	"github.com/singleton-webhook/singleton-webhook/patches"
	"github.com/singleton-webhook/singleton-webhook/webhook"
)

// readyTimeout bounds each wait of StartWebhook.
const readyTimeout = 30 * time.Second

// SetupFunc registers admission handlers on the webhook server and
// controllers on the manager that hosts it.
type SetupFunc func(mgr ctrl.Manager, srv ctrlwebhook.Server) error

// ProductSetup is what `singleton-webhook serve` runs but the election
// controllers: the product's handlers (scale parents read from the manager's
// metadata-only cache) and the drift controller. The election suite runs
// those controllers itself, as the webhook's ServiceAccount, to test their
// RBAC; suites that add controllers call ProductSetup from their own
// SetupFunc.
func ProductSetup(p patches.Policy) SetupFunc {
	return func(mgr ctrl.Manager, srv ctrlwebhook.Server) error {
		webhook.NewHandlers(p, webhook.CachedParent(mgr.GetCache(), mgr.GetAPIReader())).Register(srv)
		return controllers.SetupDrift(mgr, p)
	}
}

// WebhookOptions configure StartWebhook.
type WebhookOptions struct {
	// Policy is the cluster-wide policy of the default setup.
	Policy patches.Policy
	// Setup replaces ProductSetup(Policy): a no-op handler set registered at
	// the same paths for benchmarks, or the product plus more controllers.
	Setup SetupFunc
	// CertDir serves tls.crt and tls.key from this directory instead of
	// Env.CertDir, e.g. a certificate cert-manager issued. The server reloads
	// them when they change, as in production.
	CertDir string
}

// Webhook is the webhook served in-process: a controller-runtime manager
// with its webhook server on Env.WebhookPort.
type Webhook struct {
	env    *Env
	opts   WebhookOptions
	cancel context.CancelFunc
	done   chan error
}

// StartWebhook starts the webhook and waits until it serves. With the
// default setup and the configuration installed, it also waits until the API
// server mutates through it (WaitForMutation); a custom Setup only waits for
// the server to accept TLS connections. t.Cleanup stops it.
func (e *Env) StartWebhook(t testing.TB, opts WebhookOptions) *Webhook {
	t.Helper()
	w := &Webhook{env: e, opts: opts}
	w.Start(t)
	t.Cleanup(func() {
		if w.cancel != nil {
			w.Stop(t)
		}
	})
	return w
}

// Start starts the webhook again after Stop, on the same port and with the
// same options, and waits as StartWebhook does.
func (w *Webhook) Start(t testing.TB) {
	t.Helper()
	if w.cancel != nil {
		t.Fatal("start webhook: it is already running")
	}
	srv, mgr, err := w.newManager()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel, w.done = cancel, make(chan error, 1)
	go func() { w.done <- mgr.Start(ctx) }()
	if err := w.waitReady(srv, mgr); err != nil {
		w.Stop(t)
		t.Fatal(err)
	}
}

// Stop stops the webhook and waits until its port is closed: from then on
// the API server finds nobody at the webhook's URL.
func (w *Webhook) Stop(t testing.TB) {
	t.Helper()
	if w.cancel == nil {
		t.Fatal("stop webhook: it is not running")
	}
	w.cancel()
	err := <-w.done
	w.cancel = nil
	if err != nil {
		t.Errorf("webhook manager: %v", err)
	}
}

func (w *Webhook) newManager() (ctrlwebhook.Server, ctrl.Manager, error) {
	certDir := w.opts.CertDir
	if certDir == "" {
		certDir = w.env.CertDir
	}
	srv := ctrlwebhook.NewServer(ctrlwebhook.Options{
		Host:    "127.0.0.1",
		Port:    w.env.WebhookPort,
		CertDir: certDir,
		TLSOpts: []func(*tls.Config){func(c *tls.Config) {
			c.MinVersion = tls.VersionTLS12
			c.NextProtos = []string{"http/1.1"}
		}},
	})
	skipNameValidation := true // a restart registers the same controller names again
	mgr, err := ctrl.NewManager(w.env.Config, ctrl.Options{
		Scheme:                 clientgoscheme.Scheme,
		WebhookServer:          srv,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Cache:                  cache.Options{DefaultTransform: cache.TransformStripManagedFields()},
		Controller:             config.Controller{SkipNameValidation: &skipNameValidation},
	})
	if err != nil {
		return nil, nil, fmt.Errorf("create webhook manager: %w", err)
	}
	setup := w.opts.Setup
	if setup == nil {
		setup = ProductSetup(w.opts.Policy)
	}
	// GetWebhookServer adds srv to the manager's runnables, so it starts.
	if err := setup(mgr, mgr.GetWebhookServer()); err != nil {
		return nil, nil, fmt.Errorf("set up webhook: %w", err)
	}
	return srv, mgr, nil
}

// waitReady waits for the server to accept connections and, with the
// default setup, for the Deployment metadata cache to sync and the API
// server to mutate through the webhook.
func (w *Webhook) waitReady(srv ctrlwebhook.Server, mgr ctrl.Manager) error {
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	started := srv.StartedChecker()
	for err := started(nil); err != nil; err = started(nil) {
		select {
		case mgrErr := <-w.done:
			w.done <- mgrErr // Stop reads it again
			return fmt.Errorf("start webhook: manager stopped: %w", mgrErr)
		case <-ctx.Done():
			return fmt.Errorf("start webhook: %w (last: %w)", ctx.Err(), err)
		case <-time.After(20 * time.Millisecond):
		}
	}
	if w.opts.Setup != nil {
		return nil
	}
	meta := &metav1.PartialObjectMetadata{}
	meta.SetGroupVersionKind(appsv1.SchemeGroupVersion.WithKind("Deployment"))
	if _, err := mgr.GetCache().GetInformer(ctx, meta); err != nil {
		return fmt.Errorf("start webhook: sync the Deployment metadata cache: %w", err)
	}
	if !w.env.configured {
		return nil
	}
	return WaitForMutation(ctx, w.env.Config)
}
