package app

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	ctrlwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/singleton-webhook/singleton-webhook/certs"
	"github.com/singleton-webhook/singleton-webhook/controllers"
	"github.com/singleton-webhook/singleton-webhook/webhook"
)

// Defaults of the serve flags: the names and values kubebuilder projects use.
const (
	defaultWebhookPort      = 9443
	defaultCertName         = "tls.crt"
	defaultKeyName          = "tls.key"
	defaultProbeAddress     = ":8081"
	defaultMetricsAddress   = ":8080"
	defaultSelfSignedHosts  = "localhost,127.0.0.1"
	defaultLeaderElectionID = "singleton-webhook.singleton.dev"
	// defaultClientQPS and defaultClientBurst are controller-runtime's
	// in-cluster client rate limits.
	defaultClientQPS, defaultClientBurst = 20, 30
	defaultTLSMinVersion                 = webhook.TLS13
	// defaultGracefulShutdown leaves in-flight reviews (at most
	// webhook.RequestTimeout) time to finish, well within a Pod's default
	// terminationGracePeriodSeconds of 30.
	defaultGracefulShutdown = 15 * time.Second
)

// serveFlags are the flags of `singleton-webhook serve`.
type serveFlags struct {
	webhookPort     int
	certPath        string
	certName        string
	keyName         string
	probeAddress    string
	metricsAddress  string
	enableHTTP2     bool
	tlsMinVersion   string
	gracefulStop    time.Duration
	selfSigned      bool
	selfSignedCAOut string
	selfSignedHosts string
	standalone      bool
	leaderElect     bool
	leaderElectNS   string
	kubeconfig      string
	policy          policyFlags
	zap             zap.Options
}

func parseServe(version string, args []string, stderr io.Writer) (*serveFlags, error) {
	f := &serveFlags{}
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&f.webhookPort, "webhook-port", defaultWebhookPort, "port of the HTTPS admission server")
	fs.StringVar(&f.certPath, "webhook-cert-path", "", "directory holding the serving certificate and key (reloaded when they change)")
	fs.StringVar(&f.certName, "webhook-cert-name", defaultCertName, "serving certificate file name in --webhook-cert-path")
	fs.StringVar(&f.keyName, "webhook-cert-key", defaultKeyName, "serving key file name in --webhook-cert-path")
	fs.StringVar(&f.probeAddress, "health-probe-bind-address", defaultProbeAddress, "address of /healthz and /readyz")
	fs.StringVar(&f.metricsAddress, "metrics-bind-address", defaultMetricsAddress, `address of /metrics; "0" disables`)
	fs.BoolVar(&f.enableHTTP2, "enable-http2", false, "serve HTTP/2 as well (off: it has had denial-of-service flaws and the API server needs only HTTP/1.1)")
	fs.StringVar(&f.tlsMinVersion, "tls-min-version", defaultTLSMinVersion, `oldest TLS version accepted: "1.3", or "1.2" (then only ECDHE key exchange with AEAD ciphers)`)
	fs.DurationVar(&f.gracefulStop, "graceful-shutdown-timeout", defaultGracefulShutdown, "on SIGTERM, how long in-flight reviews and controllers get to finish before the process exits; keep it below the Pod's terminationGracePeriodSeconds")
	fs.BoolVar(&f.selfSigned, "self-signed", false, "serve a certificate from a CA generated in memory (local runs and tests)")
	fs.StringVar(&f.selfSignedCAOut, "self-signed-ca-out", "", "with --self-signed: write the CA certificate (PEM) to this file, for the webhook's caBundle")
	fs.StringVar(&f.selfSignedHosts, "self-signed-hosts", defaultSelfSignedHosts, "with --self-signed: comma-separated DNS names and IPs of the certificate")
	fs.BoolVar(&f.standalone, "standalone", false, "serve admission only, without a cluster: no controllers, and Scales are not checked")
	fs.BoolVar(&f.leaderElect, "leader-elect", false, "elect one replica to run the controllers (the admission server runs on every replica)")
	fs.StringVar(&f.leaderElectNS, "leader-election-namespace", "", "namespace of the controllers' election Lease; default: the Pod's namespace (in a cluster)")
	fs.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig file; default: in-cluster config or $KUBECONFIG")
	f.policy.bind(fs, version)
	f.zap.BindFlags(fs)
	if err := fs.Parse(args); err != nil {
		return nil, &ExitError{Code: 2, Err: ErrReported}
	}
	if fs.NArg() > 0 {
		return nil, usageError("serve: unexpected argument %q", fs.Arg(0))
	}
	return f, f.validate()
}

// validate checks the flags together, before anything starts.
func (f *serveFlags) validate() error {
	switch {
	case f.webhookPort < 1 || f.webhookPort > 65535:
		return usageError("--webhook-port %d: want 1-65535", f.webhookPort)
	case f.selfSigned && f.certPath != "":
		return usageError("--self-signed and --webhook-cert-path exclude each other")
	case !f.selfSigned && f.certPath == "":
		return usageError("a serving certificate is needed: --webhook-cert-path DIR, or --self-signed for local runs")
	case f.selfSignedCAOut != "" && !f.selfSigned:
		return usageError("--self-signed-ca-out needs --self-signed")
	case f.standalone && f.leaderElect:
		return usageError("--standalone runs no controllers; --leader-elect has nothing to elect")
	case f.gracefulStop <= 0:
		return usageError("--graceful-shutdown-timeout %s: want a positive duration", f.gracefulStop)
	}
	if _, err := webhook.ParseTLSVersion(f.tlsMinVersion); err != nil {
		return usageError("--tls-min-version: %v", err)
	}
	_, err := f.policy.policy()
	return err
}

// tlsSettings returns the TLS version, cipher and ALPN settings of every
// server of serve.
func (f *serveFlags) tlsSettings() webhook.TLSOptions {
	v, _ := webhook.ParseTLSVersion(f.tlsMinVersion) // checked by validate
	return webhook.TLSOptions{MinVersion: v, EnableHTTP2: f.enableHTTP2}
}

// tlsOptions returns the admission server's TLS settings and certificate:
// the in-memory one with --self-signed, else the files of
// --webhook-cert-path, served by the returned ServingCert once valid.
func (f *serveFlags) tlsOptions() ([]func(*tls.Config), *webhook.ServingCert, error) {
	opts := []func(*tls.Config){f.tlsSettings().Apply}
	if !f.selfSigned {
		cert := webhook.NewServingCert(filepath.Join(f.certPath, f.certName), filepath.Join(f.certPath, f.keyName))
		return append(opts, func(c *tls.Config) { c.GetCertificate = cert.GetCertificate }), cert, nil
	}
	ss, err := certs.NewSelfSigned(strings.Split(f.selfSignedHosts, ","))
	if err != nil {
		return nil, nil, err
	}
	if f.selfSignedCAOut != "" {
		if err := os.WriteFile(f.selfSignedCAOut, ss.CAPEM, 0o644); err != nil {
			return nil, nil, fmt.Errorf("write CA bundle: %w", err)
		}
	}
	return append(opts, func(c *tls.Config) { c.GetCertificate = ss.GetCertificate }), nil, nil
}

// restConfig loads the client configuration. A kubeconfig file leaves the
// client rate limit at client-go's 5 requests/s; it gets the in-cluster
// defaults of controller-runtime instead, so a run outside the cluster
// converges as fast as the Deployment does.
func (f *serveFlags) restConfig() (*rest.Config, error) {
	if f.kubeconfig == "" {
		return ctrl.GetConfig()
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", f.kubeconfig)
	if err != nil {
		return nil, err
	}
	if cfg.QPS == 0 && cfg.Burst == 0 {
		cfg.QPS, cfg.Burst = defaultClientQPS, defaultClientBurst
	}
	return cfg, nil
}

// Serve runs `singleton-webhook serve`: the admission server and, unless
// --standalone, the controllers.
func Serve(ctx context.Context, version string, args []string, stderr io.Writer) error {
	f, err := parseServe(version, args, stderr)
	if err != nil {
		return err
	}
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&f.zap)))
	policy, _ := f.policy.policy()
	tlsOpts, cert, err := f.tlsOptions()
	if err != nil {
		return err
	}
	defer startServingCert(ctx, cert)()
	srv := ctrlwebhook.NewServer(ctrlwebhook.Options{
		Port:     f.webhookPort,
		CertDir:  f.certPath,
		CertName: f.certName,
		KeyName:  f.keyName,
		TLSOpts:  tlsOpts,
	})
	if f.standalone {
		return serveStandalone(ctx, f, srv, webhook.NewHandlers(policy, nil), cert)
	}
	cfg, err := f.restConfig()
	if err != nil {
		return fmt.Errorf("load kubeconfig: %w", err)
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		WebhookServer:           srv,
		Metrics:                 metricsserver.Options{BindAddress: f.metricsAddress, TLSOpts: []func(*tls.Config){f.tlsSettings().Apply}},
		GracefulShutdownTimeout: &f.gracefulStop,
		HealthProbeBindAddress:  f.probeAddress,
		LeaderElection:          f.leaderElect,
		LeaderElectionID:        defaultLeaderElectionID,
		LeaderElectionNamespace: f.leaderElectNS,
		Cache:                   cache.Options{DefaultTransform: cache.TransformStripManagedFields()},
	})
	if err != nil {
		return fmt.Errorf("create manager: %w", err)
	}
	metrics, err := webhook.NewMetrics(crmetrics.Registry)
	if err != nil {
		return err
	}
	handlers := webhook.NewHandlers(policy, webhook.CachedParent(mgr.GetCache(), mgr.GetAPIReader()))
	handlers.Metrics = metrics
	// GetWebhookServer adds the server to the manager's runnables; without
	// the call the manager never starts it.
	handlers.Register(mgr.GetWebhookServer())
	if err := controllers.SetupDrift(mgr, policy); err != nil {
		return err
	}
	if err := controllers.SetupElection(mgr, policy); err != nil {
		return err
	}
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return fmt.Errorf("add healthz check: %w", err)
	}
	for name, check := range readyChecks(srv, cert) {
		if err := mgr.AddReadyzCheck(name, check); err != nil {
			return fmt.Errorf("add readyz check: %w", err)
		}
	}
	return mgr.Start(ctx)
}
