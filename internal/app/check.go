package app

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"k8s.io/client-go/rest"

	"github.com/singleton-webhook/singleton-webhook/internal/ops"
)

const checkHelp = `Usage: singleton-webhook check [flags]
       kubectl singleton check [flags]

Checks the install and every singleton (all namespaces unless -n), and
prints each finding with a stable code, its cause in one line and the command
that fixes it. Exit status 0 when nothing is wrong, 1 otherwise (a finding,
or something that could not be read). --wait retries until the check passes
or the time is up, for install scripts and CI.

The install: the webhook configuration exists; its caBundle verifies the
certificate the webhook serves (read directly from a URL, or from the
Service's in-cluster name when reachable from here; otherwise the API server
verifies it for the probe); the Service has ready endpoints; a server-side
dry-run create of a singleton comes back mutated; the served certificate is
not about to end; a replica of the webhook holds the controllers' Lease.
Every singleton: never two Pods alive; no Pod gated behind one Terminating
past its grace period; a valid election leader; role labels agreeing with
the Lease; a sidecar not older than the webhook; a Lease made by the
webhook; no nodeName in the template; not in an excluded namespace; admitted.

Rights: those of status (get, list deployments, pods, leases), and
  get, list  mutatingwebhookconfigurations.admissionregistration.k8s.io
  get, list  endpointslices.discovery.k8s.io, namespaces
  create     deployments.apps in --probe-namespace (dry-run only: nothing is created)

Codes, causes and fixes: docs/status-check.md. -o json and -o yaml follow
the versioned schema check.singleton.dev/v1.

Flags:
`

// Defaults of check's flags: the names manifests/ and the chart install.
const (
	defaultInstallNamespace     = "singleton-system"
	defaultWebhookConfiguration = "singleton-webhook"
	defaultWebhookDeployment    = "singleton-webhook"
	defaultProbeNamespace       = "default"
	// defaultCertMinRemaining: cert-manager renews a third of the way
	// before the end (30 days of 90); a week left means renewal failed.
	defaultCertMinRemaining = 7 * 24 * time.Hour
	// checkRetry is the pause between two attempts of check --wait.
	checkRetry = 2 * time.Second
)

// Check runs `singleton-webhook check`. wrap, if set, changes the client
// configuration.
func Check(ctx context.Context, args []string, stdout, stderr io.Writer, wrap func(*rest.Config)) error {
	f := &clusterFlags{}
	in := ops.Install{LeaderLease: defaultLeaderElectionID}
	var wait time.Duration
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	f.bind(fs)
	fs.DurationVar(&wait, "wait", 0, "retry until the check passes or this time is up (e.g. 2m)")
	fs.StringVar(&in.Namespace, "install-namespace", defaultInstallNamespace, "namespace of the webhook's Deployment, Service and controllers' Lease")
	fs.StringVar(&in.WebhookConfiguration, "webhook-configuration", defaultWebhookConfiguration, "name of the MutatingWebhookConfiguration")
	fs.StringVar(&in.Deployment, "webhook-deployment", defaultWebhookDeployment, "name of the webhook's Deployment")
	fs.StringVar(&in.ProbeNamespace, "probe-namespace", defaultProbeNamespace, "namespace of the dry-run probe Deployment (nothing is created)")
	fs.DurationVar(&in.CertMinRemaining, "cert-min-remaining", defaultCertMinRemaining, "a served certificate ending sooner is a finding")
	fs.Usage = func() {
		fmt.Fprint(stderr, checkHelp)
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError("check: unexpected argument %q", fs.Arg(0))
	}
	if wait < 0 {
		return usageError("--wait %s: want a positive duration", wait)
	}
	f.all = f.namespace == ""
	cs, rc, scope, err := f.client(wrap)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(wait)
	for {
		r, err := ops.Check(ctx, cs, scope, in)
		if err == nil && r.OK || time.Now().Add(checkRetry).After(deadline) {
			if err != nil {
				return apiError(rc, err)
			}
			return reportCheck(r, f.output, stdout, stderr)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(checkRetry):
		}
	}
}

// reportCheck writes the result and sets the exit status.
func reportCheck(r *ops.CheckResult, format string, stdout, stderr io.Writer) error {
	if err := ops.WriteCheck(stdout, r, format); err != nil {
		return err
	}
	if err := reportPartial(r.Errors, stderr); err != nil || r.OK {
		return err
	}
	return &ExitError{Code: 1, Err: ErrReported}
}
