// Command localcluster is what `make run` runs: etcd and kube-apiserver on
// loopback (started by envtest from KUBEBUILDER_ASSETS), bin/singleton-webhook
// serving with a self-signed certificate, and the project's
// manifests/mutatingwebhook.yaml registered to reach it. It writes
// .run/kubeconfig, prints the line to export it and a few commands to try,
// and runs until SIGINT or SIGTERM, then stops everything it started and
// removes the control plane's data.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/singleton-webhook/singleton-webhook/internal/testenv"
)

// startTimeout bounds each wait during start-up.
const startTimeout = time.Minute

// options are the command's flags.
type options struct {
	root   string
	runDir string
	binary string
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "localcluster:", err)
		os.Exit(1)
	}
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	root, err := testenv.ModuleRoot()
	if err != nil {
		return nil, err
	}
	o := &options{root: root}
	fs := flag.NewFlagSet("localcluster", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.runDir, "run-dir", filepath.Join(root, ".run"), "directory for the kubeconfig, the CA and the webhook's log")
	fs.StringVar(&o.binary, "webhook-binary", filepath.Join(root, "bin", "singleton-webhook"), "the singleton-webhook binary to serve with (`make build`)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if _, err := os.Stat(o.binary); err != nil {
		return nil, fmt.Errorf("webhook binary: %w (run `make build`)", err)
	}
	if o.runDir, err = filepath.Abs(o.runDir); err != nil {
		return nil, fmt.Errorf("run directory: %w", err)
	}
	return o, os.MkdirAll(o.runDir, 0o755)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	fmt.Fprintln(stderr, "starting etcd and kube-apiserver")
	cp, err := testenv.StartControlPlane(testenv.ControlPlaneOptions{Dir: o.runDir})
	if err != nil {
		return err
	}
	defer func() {
		fmt.Fprintln(stderr, "stopping kube-apiserver and etcd")
		err = errors.Join(err, cp.Stop())
	}()
	fmt.Fprintln(stderr, "starting singleton-webhook")
	hook, err := startWebhook(o, cp.Kubeconfig)
	if err != nil {
		return err
	}
	defer func() {
		fmt.Fprintln(stderr, "stopping singleton-webhook")
		err = errors.Join(err, hook.stop())
	}()
	if err := register(ctx, o, cp, hook); err != nil {
		return err
	}
	printUsage(stdout, o, cp.Kubeconfig, hook)
	select {
	case <-ctx.Done():
		return nil
	case <-hook.exited:
		return fmt.Errorf("singleton-webhook exited: %w; its log: %s", hook.exitErr, hook.logPath)
	}
}

// register installs the webhook configuration pointing at the child and
// waits until the API server mutates through it.
func register(ctx context.Context, o *options, cp *testenv.ControlPlane, hook *child) error {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	ca, err := hook.waitReady(ctx)
	if err != nil {
		return err
	}
	c, err := testenv.LocalWebhookConfiguration(filepath.Join(o.root, testenv.WebhookManifest), hook.url, ca)
	if err != nil {
		return err
	}
	if err := testenv.InstallWebhookConfiguration(ctx, cp.Config, c); err != nil {
		return err
	}
	return testenv.WaitForMutation(ctx, cp.Config)
}

func printUsage(w io.Writer, o *options, kubeconfig string, hook *child) {
	rel := func(p string) string {
		wd, err := os.Getwd()
		if err != nil {
			return p
		}
		if r, err := filepath.Rel(wd, p); err == nil && !strings.HasPrefix(r, "..") {
			return r
		}
		return p
	}
	kubectl := rel(filepath.Join(o.root, "bin", "k8s", "kubectl"))
	examples := rel(filepath.Join(o.root, "examples"))
	fmt.Fprintf(w, `
singleton-webhook is registered with a local kube-apiserver. In another shell:

export KUBECONFIG=%s

  # a singleton: stored with 1 replica and Recreate, kubectl prints why
  %[2]s apply -f %[3]s/replicas.yaml
  %[2]s get deploy queue-consumer -o yaml
  # scaling it leaves it at 1, with a warning
  %[2]s scale deploy/queue-consumer --replicas=3
  # no singleton annotation: stored as written
  %[2]s apply -f %[3]s/ordinary.yaml
  # what the webhook would do, stored nowhere
  %[2]s apply --dry-run=server -o yaml -f %[3]s/replicas.yaml

There is no controller-manager and no node: Deployments are stored, no pods run.
Webhook log: %[4]s; metrics: %[5]s
Ctrl-C stops everything.
`, kubeconfig, kubectl, examples, rel(hook.logPath), hook.metricsURL)
}
