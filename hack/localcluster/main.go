// Command localcluster is what `make run` runs: a whole cluster on loopback
// (etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok
// simulating the nodes, from KUBEBUILDER_ASSETS; see internal/cluster),
// bin/singleton-webhook serving with a self-signed certificate, and the
// project's manifests/mutatingwebhook.yaml registered to reach it. It writes
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

	"github.com/singleton-webhook/singleton-webhook/internal/cluster"
	"github.com/singleton-webhook/singleton-webhook/internal/testenv"
)

// options are the command's flags.
type options struct {
	root    string
	runDir  string
	binary  string
	nodes   int
	forHelm bool
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
	fs.IntVar(&o.nodes, "nodes", cluster.DefaultNodes, "number of simulated nodes")
	fs.BoolVar(&o.forHelm, "for-helm", false, "run cert-manager (CRDs, controllers, cainjector) instead of a local webhook, for `helm install` of charts/singleton-webhook")
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
	fmt.Fprintf(stderr, "starting etcd, kube-apiserver, kube-controller-manager, kube-scheduler and %d simulated nodes\n", o.nodes)
	start := time.Now()
	opts := cluster.Options{Dir: o.runDir, Nodes: o.nodes}
	if o.forHelm {
		crds, err := certManagerCRDs()
		if err != nil {
			return err
		}
		opts.CRDDirectoryPaths = []string{crds}
	}
	c, err := cluster.Start(ctx, opts)
	if err != nil {
		return err
	}
	defer func() {
		fmt.Fprintln(stderr, "stopping the cluster")
		err = errors.Join(err, c.Stop())
	}()
	if o.forHelm {
		return runForHelm(ctx, o, c, start, stdout, stderr)
	}
	fmt.Fprintln(stderr, "starting singleton-webhook")
	hook, err := c.StartWebhook(ctx, o.binary)
	if err != nil {
		return err
	}
	defer func() {
		fmt.Fprintln(stderr, "stopping singleton-webhook")
		hook.Stop()
	}()
	fmt.Fprintf(stderr, "ready in %s\n", time.Since(start).Round(100*time.Millisecond))
	printUsage(stdout, o, c.Kubeconfig, hook)
	select {
	case <-ctx.Done():
		return nil
	case <-hook.Exited():
		return fmt.Errorf("singleton-webhook exited: %v; its log: %s", hook.Err(), hook.LogPath)
	}
}

// runForHelm runs cert-manager in-process instead of a local webhook, so
// that the chart can be installed into the cluster as into any other.
func runForHelm(ctx context.Context, o *options, c *cluster.Cluster, start time.Time, stdout, stderr io.Writer) (err error) {
	fmt.Fprintln(stderr, "starting cert-manager")
	stop, err := startCertManager(ctx, c.Kubeconfig)
	if err != nil {
		return err
	}
	defer func() {
		fmt.Fprintln(stderr, "stopping cert-manager")
		err = errors.Join(err, stop())
	}()
	fmt.Fprintf(stderr, "ready in %s\n", time.Since(start).Round(100*time.Millisecond))
	fmt.Fprintf(stdout, `
A local cluster with cert-manager and no webhook. In another shell:

export KUBECONFIG=%s

  bin/tools/helm install singleton-webhook charts/singleton-webhook \
    --namespace singleton-system --create-namespace
  bin/k8s/kubectl -n singleton-system rollout status deploy/singleton-webhook

Nodes are simulated: the chart's Pods are scheduled and become Ready, but no
container runs, so the installed webhook does not answer admissions here.
Ctrl-C stops everything.
`, c.Kubeconfig)
	<-ctx.Done()
	return nil
}

func printUsage(w io.Writer, o *options, kubeconfig string, hook *cluster.Webhook) {
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
singleton-webhook is registered with a local cluster. In another shell:

export KUBECONFIG=%s

  # a singleton: stored with 1 replica and Recreate, kubectl prints why
  %[2]s apply -f %[3]s/replicas.yaml
  %[2]s get pods -o wide
  # scaling it leaves it at 1, with a warning
  %[2]s scale deploy/queue-consumer --replicas=3
  # delete its Pod: the replacement waits (SchedulingGated) until it is gone
  %[2]s delete pod -l app=queue-consumer --wait=false; %[2]s get pods -w
  # no singleton annotation: stored as written
  %[2]s apply -f %[3]s/ordinary.yaml
  # what the webhook would do, stored nowhere
  %[2]s apply --dry-run=server -o yaml -f %[3]s/replicas.yaml

Nodes are simulated by kwok: Pods are scheduled, get IPs, become Ready and
terminate after their grace period, but no container runs.
Logs of every component: %[4]s; webhook metrics: %[5]s
Ctrl-C stops everything.
`, kubeconfig, kubectl, examples, rel(o.runDir), hook.MetricsURL)
}
