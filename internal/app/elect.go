package app

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"

	"go.uber.org/zap/zapcore"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/singleton-webhook/singleton-webhook/elector"
)

// electFlags are the flags of `singleton-webhook elect`.
type electFlags struct {
	cfg        elector.Config
	kubeconfig string
	zap        zap.Options
}

func parseElect(args []string, stderr io.Writer) (*electFlags, error) {
	// Errors such as an unreachable API server repeat every retry period:
	// no stack traces unless asked for with --zap-stacktrace-level.
	f := &electFlags{zap: zap.Options{StacktraceLevel: zapcore.PanicLevel}}
	c := &f.cfg
	fs := flag.NewFlagSet("elect", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.LeaseName, "lease-name", "", "name of the coordination.k8s.io/v1 Lease the candidates share (required)")
	fs.StringVar(&c.LeaseNamespace, "lease-namespace", os.Getenv("POD_NAMESPACE"), "namespace of the Lease; default $POD_NAMESPACE")
	fs.StringVar(&c.Identity, "identity", os.Getenv("POD_NAME"), "this candidate's identity in the Lease; default $POD_NAME")
	fs.DurationVar(&c.LeaseDuration, "lease-duration", elector.DefaultLeaseDuration, "how long standbys wait after the last renewal they saw before taking over (whole seconds)")
	fs.DurationVar(&c.RenewDeadline, "renew-deadline", elector.DefaultRenewDeadline, "how long the leader keeps its signals after its last successful renewal")
	fs.DurationVar(&c.RetryPeriod, "retry-period", elector.DefaultRetryPeriod, "pause between two attempts to acquire or renew")
	fs.StringVar(&c.ListenAddress, "listen-address", elector.DefaultListenAddress, "address of GET /leader, /healthz and /metrics")
	fs.StringVar(&c.StateDir, "state-dir", elector.DefaultStateDir, `directory of the "leader" file, present only while leading`)
	fs.StringVar(&c.PodName, "pod-name", os.Getenv("POD_NAME"), "Pod whose label singleton.dev/role is kept at leader|standby; default $POD_NAME; empty disables the label")
	fs.BoolVar(&c.WatchLease, "lease-watch", true, "watch the Lease so standbys take over as soon as it is released (needs the watch verb on leases)")
	fs.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig file; default: $KUBECONFIG, else the in-cluster config")
	f.zap.BindFlags(fs)
	if err := fs.Parse(args); err != nil {
		return nil, &ExitError{Code: 2, Err: ErrReported}
	}
	if fs.NArg() > 0 {
		return nil, usageError("elect: unexpected argument %q", fs.Arg(0))
	}
	c.PodNamespace = os.Getenv("POD_NAMESPACE")
	if err := c.Validate(); err != nil {
		return nil, usageError("elect: %w", err)
	}
	return f, nil
}

// restConfig loads --kubeconfig, else $KUBECONFIG, else the in-cluster config.
func (f *electFlags) restConfig() (*rest.Config, error) {
	if f.kubeconfig == "" && os.Getenv("KUBECONFIG") == "" {
		return rest.InClusterConfig()
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = f.kubeconfig
	return clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, nil).ClientConfig()
}

// Elect runs `singleton-webhook elect`: the leader-election sidecar.
func Elect(ctx context.Context, args []string, stderr io.Writer) error {
	f, err := parseElect(args, stderr)
	if err != nil {
		return err
	}
	log := zap.New(zap.UseFlagOptions(&f.zap), zap.WriteTo(stderr))
	ctrl.SetLogger(log)
	cfg, err := f.restConfig()
	if err != nil {
		return fmt.Errorf("elect: load kubeconfig: %w", err)
	}
	cfg.UserAgent = "singleton-elector"
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("elect: kubernetes client: %w", err)
	}
	return elector.Run(ctrl.LoggerInto(ctx, log), f.cfg, client)
}
