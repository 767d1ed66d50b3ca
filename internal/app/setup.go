package app

import (
	"crypto/tls"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	ctrlwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/singleton-webhook/singleton-webhook/certs"
	"github.com/singleton-webhook/singleton-webhook/controllers"
	"github.com/singleton-webhook/singleton-webhook/patches"
	"github.com/singleton-webhook/singleton-webhook/webhook"
)

// ServeConfig is the resolved configuration of `serve`: its flags, checked
// together and turned into the values the servers and controllers take.
// The binary and the test harness (internal/testenv) both run serve from
// one, through NewManager and Setup.
type ServeConfig struct {
	// WebhookHost is the address the admission server binds; empty: all.
	WebhookHost string
	// WebhookPort is the port of the admission server.
	WebhookPort int
	// Cert is the admission server's certificate.
	Cert certs.Source
	// TLS are the TLS settings of the admission and metrics servers.
	TLS webhook.TLSOptions
	// ProbeAddress serves /healthz and /readyz; "0" disables them.
	ProbeAddress string
	// MetricsAddress serves /metrics; "0" disables it.
	MetricsAddress string
	// MetricsSecure serves /metrics over HTTPS, to callers the API server
	// authenticates (TokenReview) and authorizes (SubjectAccessReview).
	MetricsSecure bool
	// GracefulShutdown bounds how long in-flight reviews and controllers
	// get to finish once the context is done.
	GracefulShutdown time.Duration
	// Standalone serves admission without a cluster: the manager runs on
	// an empty rest.Config, with no controllers and no cache in use, and
	// Scales are not checked.
	Standalone bool
	// LeaderElection elects one replica to run the controllers, with a
	// Lease in LeaderElectionNamespace (empty: the Pod's namespace).
	LeaderElection          bool
	LeaderElectionNamespace string
	// Controllers are the names of the controllers to run, from
	// ControllerNames.
	Controllers []string
	// Policy is the cluster-wide policy of the handlers and controllers.
	Policy patches.Policy
	// Scope is where the controllers act, as the webhook configuration's
	// namespaceSelector admits (the gate controller acts everywhere); the
	// zero Scope is every namespace.
	Scope controllers.Scope
}

// controllerSetups are the controllers serve runs, by name, in the order
// they are set up. A new controller is added here.
var controllerSetups = []struct {
	name  string
	setup func(ctrl.Manager, *ServeConfig) error
}{
	{"drift", func(m ctrl.Manager, c *ServeConfig) error { return controllers.SetupDrift(m, c.Policy, c.Scope) }},
	{"election", func(m ctrl.Manager, c *ServeConfig) error { return controllers.SetupElection(m, c.Policy, c.Scope) }},
	// Everywhere: a gated Pod in any namespace has nothing else to lift its gate.
	{"gate", func(m ctrl.Manager, c *ServeConfig) error { return controllers.SetupGate(m, c.Policy) }},
}

// ControllerNames returns the names of the controllers serve can run.
func ControllerNames() []string {
	var names []string
	for _, c := range controllerSetups {
		names = append(names, c.name)
	}
	return names
}

// parseControllers reads a comma-separated list of controller names.
func parseControllers(s string) ([]string, error) {
	var out []string
	for _, n := range strings.Split(s, ",") {
		n = strings.TrimSpace(n)
		if n == "" {
			continue
		}
		if !slices.Contains(ControllerNames(), n) {
			return nil, fmt.Errorf("unknown controller %q: want some of %s", n, strings.Join(ControllerNames(), ", "))
		}
		out = append(out, n)
	}
	return out, nil
}

// NewManager creates the controller-runtime manager of serve for the
// cluster of rc: the admission server, metrics and probe servers, leader
// election and a cache without managedFields. Each of opts may change the
// manager's options last (a harness that restarts the manager in one
// process lets it register the same controller names again).
func NewManager(rc *rest.Config, c *ServeConfig, opts ...func(*ctrl.Options)) (ctrl.Manager, error) {
	srv := newWebhookServer(c)
	metrics := metricsserver.Options{BindAddress: c.MetricsAddress, TLSOpts: []func(*tls.Config){c.TLS.Apply},
		// Uncompressed: a scrape's gzip writer (about 1.3 MB of compressor
		// state, pooled between scrapes) would be a sixth of the live heap
		// with 1,000 singletons, to save tens of KB per scrape.
		HandlerOpts: []func(*promhttp.HandlerOpts){func(o *promhttp.HandlerOpts) { o.DisableCompression = true }}}
	if c.MetricsSecure {
		// The metrics server generates its own self-signed certificate: the
		// scraper authenticates itself with a token, and checks the server
		// only if its setup gives it a CA.
		metrics.SecureServing = true
		metrics.FilterProvider = metricsAuth
	}
	o := ctrl.Options{
		WebhookServer:           srv,
		Metrics:                 metrics,
		GracefulShutdownTimeout: &c.GracefulShutdown,
		HealthProbeBindAddress:  c.ProbeAddress,
		LeaderElection:          c.LeaderElection,
		LeaderElectionID:        defaultLeaderElectionID,
		LeaderElectionNamespace: c.LeaderElectionNamespace,
		Cache: cache.Options{
			DefaultTransform: cache.TransformStripManagedFields(),
			// Only the Pods of singletons, and only the Roles, RoleBindings,
			// Leases and Services the controllers made, are ever cached.
			ByObject: controllers.CacheByObject(),
		},
	}
	for _, opt := range opts {
		opt(&o)
	}
	mgr, err := ctrl.NewManager(rc, o)
	if err != nil {
		return nil, fmt.Errorf("create manager: %w", err)
	}
	return mgr, nil
}

// newWebhookServer is the admission server of c, serving c.Cert.
func newWebhookServer(c *ServeConfig) ctrlwebhook.Server {
	return ctrlwebhook.NewServer(ctrlwebhook.Options{
		Host:    c.WebhookHost,
		Port:    c.WebhookPort,
		TLSOpts: []func(*tls.Config){c.TLS.Apply, func(t *tls.Config) { t.GetCertificate = c.Cert.GetCertificate }},
	})
}

// Setup adds to mgr everything serve runs: the certificate source, the
// admission handlers on srv (the manager's webhook server, or a wrapper of
// it) with their metrics, the controllers of c, and the probes, readiness
// from srv, the server that serves the handlers.
func Setup(mgr ctrl.Manager, srv ctrlwebhook.Server, c *ServeConfig) error {
	if err := mgr.Add(c.Cert); err != nil {
		return fmt.Errorf("add serving certificate: %w", err)
	}
	metrics, err := webhook.NewMetrics(crmetrics.Registry)
	if err != nil {
		return err
	}
	var parent webhook.ParentLookup
	var electionLeases webhook.LeaseLookup
	var leases client.Reader // nil in standalone: no Lease metrics
	if !c.Standalone {
		parent = webhook.CachedParent(mgr.GetCache(), mgr.GetAPIReader())
		electionLeases = leaseLookup(mgr, c)
		leases = mgr.GetAPIReader()
	}
	if err := registerOpsMetrics(crmetrics.Registry, c.Cert, leases); err != nil {
		return err
	}
	if !c.Standalone {
		cached := newCacheCollector(mgr.GetCache(), c.Controllers)
		if err := cached.register(crmetrics.Registry); err != nil {
			return err
		}
		if err := mgr.Add(cached); err != nil {
			return fmt.Errorf("add cache metrics: %w", err)
		}
	}
	handlers := webhook.NewHandlers(c.Policy, parent)
	handlers.Deployments.Leases = electionLeases
	handlers.Metrics = metrics
	handlers.Register(srv)
	for _, ctl := range controllerSetups {
		if !slices.Contains(c.Controllers, ctl.name) {
			continue
		}
		if err := ctl.setup(mgr, c); err != nil {
			return fmt.Errorf("set up the %s controller: %w", ctl.name, err)
		}
	}
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return fmt.Errorf("add healthz check: %w", err)
	}
	for name, check := range readyChecks(srv, c.Cert) {
		if err := mgr.AddReadyzCheck(name, check); err != nil {
			return fmt.Errorf("add readyz check: %w", err)
		}
	}
	return nil
}

// leaseLookup is the Deployment handler's lookup of election Leases: through
// the manager's cache of the Leases the controllers made when the election
// controllers run (their informer; on a replica not leading, whose
// controllers wait, the first read starts it), else straight from the API
// server, so admission never keeps an informer the controllers do not.
func leaseLookup(mgr ctrl.Manager, c *ServeConfig) webhook.LeaseLookup {
	var cached client.Reader
	if slices.Contains(c.Controllers, "election") {
		cached = mgr.GetCache()
	}
	return webhook.CachedLease(cached, mgr.GetAPIReader())
}

// readyChecks are the readiness checks of serve: the admission server
// completes a TLS handshake (so a certificate is being served), and the
// certificate source has a valid certificate.
func readyChecks(srv ctrlwebhook.Server, cert certs.Source) map[string]healthz.Checker {
	return map[string]healthz.Checker{"webhook": srv.StartedChecker(), "serving-cert": cert.Check}
}
