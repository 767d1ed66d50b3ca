package app

import (
	"context"
	"errors"
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
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/singleton-webhook/singleton-webhook/certs"
	"github.com/singleton-webhook/singleton-webhook/controllers"
	"github.com/singleton-webhook/singleton-webhook/internal/sidecar"
	"github.com/singleton-webhook/singleton-webhook/webhook"
)

// Defaults of the serve flags: the names and values kubebuilder projects use.
const (
	defaultWebhookPort      = 9443
	defaultCertName         = "tls.crt"
	defaultKeyName          = "tls.key"
	defaultProbeAddress     = ":8081"
	defaultMetricsAddress   = ":8443"
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

// serveFlags are the flags of `singleton-webhook serve`, as given.
type serveFlags struct {
	webhookPort     int
	certPath        string
	certName        string
	keyName         string
	probeAddress    string
	metricsAddress  string
	metricsSecure   bool
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
	controllers     string
	excludedNS      string
	optOut          string
	policy          policyFlags
	zap             zap.Options
}

func (f *serveFlags) bind(fs *flag.FlagSet, version string) {
	fs.IntVar(&f.webhookPort, "webhook-port", defaultWebhookPort, "port of the HTTPS admission server")
	fs.StringVar(&f.certPath, "webhook-cert-path", "", "directory holding the serving certificate and key (reloaded when they change)")
	fs.StringVar(&f.certName, "webhook-cert-name", defaultCertName, "serving certificate file name in --webhook-cert-path")
	fs.StringVar(&f.keyName, "webhook-cert-key", defaultKeyName, "serving key file name in --webhook-cert-path")
	fs.StringVar(&f.probeAddress, "health-probe-bind-address", defaultProbeAddress, "address of /healthz and /readyz")
	fs.StringVar(&f.metricsAddress, "metrics-bind-address", defaultMetricsAddress, `address of /metrics; "0" disables`)
	fs.BoolVar(&f.metricsSecure, "metrics-secure", true, "serve /metrics over HTTPS to callers whose token the API server authenticates and authorizes (get on the /metrics URL); false: plain HTTP to anyone, for local runs")
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
	fs.StringVar(&f.controllers, "controllers", strings.Join(ControllerNames(), ","), "comma-separated controllers to run: "+strings.Join(ControllerNames(), ", "))
	fs.StringVar(&f.excludedNS, "excluded-namespaces", controllers.SystemNamespace, "comma-separated namespaces where the controllers never act (the gate controller excepted), besides the webhook's own ($"+sidecar.EnvPodNamespace+", else the Pod's); the webhook configuration's namespaceSelector must exclude the same")
	fs.StringVar(&f.optOut, "namespace-opt-out", controllers.OptOutLabel+"="+controllers.OptOutValue, `label key=value opting a namespace out, as in the webhook configuration's namespaceSelector; "" for none`)
	f.policy.bind(fs, version)
	f.zap.BindFlags(fs)
}

// parseServe parses and validates the flags of serve into its config.
func parseServe(version string, args []string, stderr io.Writer) (*serveFlags, *ServeConfig, error) {
	f := &serveFlags{}
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	f.bind(fs, version)
	if err := parseFlags(fs, args); err != nil {
		return nil, nil, err
	}
	if fs.NArg() > 0 {
		return nil, nil, usageError("serve: unexpected argument %q", fs.Arg(0))
	}
	cfg, err := f.config()
	return f, cfg, err
}

// config checks the flags together, before anything starts, and resolves
// them into the config serve runs with.
func (f *serveFlags) config() (*ServeConfig, error) {
	switch {
	case f.webhookPort < 1 || f.webhookPort > 65535:
		return nil, usageError("--webhook-port %d: want 1-65535", f.webhookPort)
	case f.selfSigned && f.certPath != "":
		return nil, usageError("--self-signed and --webhook-cert-path exclude each other")
	case !f.selfSigned && f.certPath == "":
		return nil, usageError("a serving certificate is needed: --webhook-cert-path DIR, or --self-signed for local runs")
	case f.selfSignedCAOut != "" && !f.selfSigned:
		return nil, usageError("--self-signed-ca-out needs --self-signed")
	case f.standalone && f.leaderElect:
		return nil, usageError("--standalone runs no controllers; --leader-elect has nothing to elect")
	case f.standalone && f.metricsSecure && f.metricsAddress != "0":
		return nil, usageError("--standalone has no API server to authenticate scrapes of /metrics: add --metrics-secure=false (plain HTTP, local runs) or --metrics-bind-address=0")
	case f.gracefulStop <= 0:
		return nil, usageError("--graceful-shutdown-timeout %s: want a positive duration", f.gracefulStop)
	}
	v, err := webhook.ParseTLSVersion(f.tlsMinVersion)
	if err != nil {
		return nil, usageError("--tls-min-version: %v", err)
	}
	p, err := f.policy.policy()
	if err != nil {
		return nil, err
	}
	ctrls, err := parseControllers(f.controllers)
	if err != nil {
		return nil, usageError("--controllers: %v", err)
	}
	scope, err := controllers.NewScope(ownNamespace(), strings.Split(f.excludedNS, ","))
	if err != nil {
		return nil, usageError("--excluded-namespaces: %v", err)
	}
	if scope, err = scope.WithOptOut(f.optOut); err != nil {
		return nil, usageError("--namespace-opt-out: %v", err)
	}
	if f.standalone {
		ctrls = nil // no cluster to control
	}
	cfg := &ServeConfig{
		WebhookPort: f.webhookPort, TLS: webhook.TLSOptions{MinVersion: v, EnableHTTP2: f.enableHTTP2},
		ProbeAddress: f.probeAddress, MetricsAddress: f.metricsAddress, MetricsSecure: f.metricsSecure,
		GracefulShutdown: f.gracefulStop, Standalone: f.standalone, Controllers: ctrls, Policy: p,
		LeaderElection: f.leaderElect, LeaderElectionNamespace: f.leaderElectNS, Scope: scope,
	}
	if !f.selfSigned {
		cfg.Cert = certs.NewFiles(filepath.Join(f.certPath, f.certName), filepath.Join(f.certPath, f.keyName))
		return cfg, nil
	}
	ss, err := certs.NewSelfSigned(strings.Split(f.selfSignedHosts, ","))
	if err != nil {
		return nil, err
	}
	cfg.Cert = ss
	return cfg, nil
}

// serviceAccountNamespace is where a Pod finds its own namespace.
const serviceAccountNamespace = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"

// ownNamespace is the namespace the webhook runs in: $POD_NAMESPACE, else
// its ServiceAccount's (in a Pod), else "" (a local run).
func ownNamespace() string {
	if ns := os.Getenv(sidecar.EnvPodNamespace); ns != "" {
		return ns
	}
	b, err := os.ReadFile(serviceAccountNamespace)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// restConfig loads the client configuration, as kubectl and
// controller-runtime find it: --kubeconfig, else $KUBECONFIG, else the
// in-cluster config, else ~/.kube/config. A configuration without rate
// limits gets controller-runtime's in-cluster ones rather than client-go's
// 5 requests/s, so a run outside the cluster converges as fast as the
// Deployment does.
func (f *serveFlags) restConfig() (*rest.Config, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = f.kubeconfig
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, nil).ClientConfig()
	if clientcmd.IsEmptyConfig(err) {
		return nil, errors.New("no cluster found: pass --kubeconfig, set $KUBECONFIG, run in a Pod, or serve admission only with --standalone")
	}
	if err != nil {
		return nil, err
	}
	if cfg.QPS == 0 && cfg.Burst == 0 {
		cfg.QPS, cfg.Burst = defaultClientQPS, defaultClientBurst
	}
	// serve runs next to its API server: gzip would cost a decompressor
	// (32 KiB of window) per watch and CPU per event, to save bandwidth
	// on the cluster's own network.
	cfg.DisableCompression = true
	return cfg, nil
}

// cluster returns the client configuration the manager runs with, and how
// it changes the manager's options. Standalone, it is an empty rest.Config,
// as cert-manager's webhook runs its manager: the servers, probes and
// shutdown need no cluster, and nothing asks one anything; the cache is left
// without options, as those for the controllers' objects would ask an API
// server how to map their types.
func (f *serveFlags) cluster(c *ServeConfig) (*rest.Config, []func(*ctrl.Options), error) {
	if c.Standalone {
		return &rest.Config{}, []func(*ctrl.Options){func(o *ctrl.Options) { o.Cache = cache.Options{} }}, nil
	}
	rc, err := f.restConfig()
	if err != nil {
		return nil, nil, fmt.Errorf("load kubeconfig: %w", err)
	}
	return rc, nil, nil
}

// Serve runs `singleton-webhook serve`: the admission server and, unless
// --standalone, the controllers.
func Serve(ctx context.Context, version string, args []string, stderr io.Writer) error {
	f, cfg, err := parseServe(version, args, stderr)
	if err != nil {
		return err
	}
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&f.zap), zap.WriteTo(stderr)))
	if ss, ok := cfg.Cert.(*certs.SelfSigned); ok && f.selfSignedCAOut != "" {
		if err := os.WriteFile(f.selfSignedCAOut, ss.CAPEM, 0o644); err != nil {
			return fmt.Errorf("write CA bundle: %w", err)
		}
	}
	rc, opts, err := f.cluster(cfg)
	if err != nil {
		return err
	}
	mgr, err := NewManager(rc, cfg, opts...)
	if err != nil {
		return err
	}
	if err := Setup(mgr, mgr.GetWebhookServer(), cfg); err != nil {
		return err
	}
	return shutdownError(ctx, mgr.Start(ctx), cfg)
}

// shutdownError names what a shutdown that outlasted the grace period cut
// short; other errors of the manager pass through.
func shutdownError(ctx context.Context, err error, c *ServeConfig) error {
	if ctx.Err() == nil || !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	what := "in-flight reviews and controllers"
	if c.Standalone {
		what = "in-flight reviews"
	}
	return fmt.Errorf("shut down: %s did not finish within the grace period of %s", what, c.GracefulShutdown)
}
