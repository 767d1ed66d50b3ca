package testenv

import (
	"context"
	"crypto/tls"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	ctrlwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/singleton-webhook/singleton-webhook/certs"
	"github.com/singleton-webhook/singleton-webhook/controllers"
	"github.com/singleton-webhook/singleton-webhook/internal/app"
	"github.com/singleton-webhook/singleton-webhook/patches"
	"github.com/singleton-webhook/singleton-webhook/webhook"
)

// readyTimeout bounds each wait of StartWebhook.
const readyTimeout = 30 * time.Second

// WebhookOptions configure StartWebhook.
type WebhookOptions struct {
	// Policy is the cluster-wide policy, as serve's policy flags give it.
	Policy patches.Policy
	// Controllers are the controllers to run, as serve's --controllers;
	// nil: all of them. The election suite runs the election controller
	// itself, as the webhook's ServiceAccount, to test its RBAC.
	Controllers []string
	// WrapServer, if set, wraps the webhook server the handlers register
	// on, e.g. to close every connection after its response.
	WrapServer func(ctrlwebhook.Server) ctrlwebhook.Server
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

// StartWebhook starts the webhook and waits until it serves and its
// Deployment metadata cache has synced; with the configuration installed, it
// also waits until the API server mutates through it (WaitForMutation).
// t.Cleanup stops it.
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

// newManager builds the webhook as `serve` does (app.NewManager and
// app.Setup), on the loopback address, without metrics and probe servers;
// as the webhook's ServiceAccount when the Env installed its identity, so
// manifests/rbac.yaml and manifests/selfrestraint.yaml hold the
// controllers as in production.
func (w *Webhook) newManager() (ctrlwebhook.Server, ctrl.Manager, error) {
	certDir := w.opts.CertDir
	if certDir == "" {
		certDir = w.env.CertDir
	}
	ctrls := w.opts.Controllers
	if ctrls == nil {
		ctrls = app.ControllerNames()
	}
	cfg := &app.ServeConfig{
		WebhookHost:      "127.0.0.1",
		WebhookPort:      w.env.WebhookPort,
		Cert:             certs.NewFiles(filepath.Join(certDir, "tls.crt"), filepath.Join(certDir, "tls.key")),
		TLS:              webhook.TLSOptions{MinVersion: tls.VersionTLS12},
		ProbeAddress:     "0",
		MetricsAddress:   "0",
		GracefulShutdown: readyTimeout,
		Controllers:      ctrls,
		Policy:           w.opts.Policy,
		// As manifests/mutatingwebhook.yaml: its namespace excluded.
		Scope: controllers.DefaultScope("singleton-system"),
	}
	restCfg := w.env.Config
	if w.env.identity {
		restCfg = AsWebhook(restCfg)
	}
	// A restart registers the same controller names again.
	mgr, err := app.NewManager(restCfg, cfg, func(o *ctrl.Options) { o.Controller.SkipNameValidation = ptr.To(true) })
	if err != nil {
		return nil, nil, err
	}
	srv := mgr.GetWebhookServer()
	if w.opts.WrapServer != nil {
		srv = w.opts.WrapServer(srv)
	}
	if err := app.Setup(mgr, srv, cfg); err != nil {
		return nil, nil, fmt.Errorf("set up webhook: %w", err)
	}
	return mgr.GetWebhookServer(), mgr, nil
}

// waitReady waits for the server to accept connections, the Deployment
// metadata cache to sync and, with the configuration installed, the API
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
