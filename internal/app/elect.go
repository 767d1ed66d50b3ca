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
	"github.com/singleton-webhook/singleton-webhook/internal/sidecar"
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
	fs := flag.NewFlagSet("elect", flag.ContinueOnError)
	fs.SetOutput(stderr)
	contract := sidecar.BindFlags(fs, os.LookupEnv) // the flags the webhook injects
	fs.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig file; default: $KUBECONFIG, else the in-cluster config")
	f.zap.BindFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, usageError("elect: unexpected argument %q", fs.Arg(0))
	}
	sc, err := contract.Config()
	if err != nil {
		return nil, usageError("elect: %w", err)
	}
	f.cfg = elector.ConfigFrom(sc)
	if err := f.cfg.Validate(); err != nil {
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
