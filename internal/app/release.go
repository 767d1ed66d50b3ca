package app

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

const releaseHelp = `Usage: singleton-webhook release [-n NAMESPACE | -A] [flags]

Lets go of the singletons before the webhook leaves (helm uninstall runs it
as a pre-delete hook; run it before "kubectl delete -k", and after labelling
a namespace singleton.dev/webhook=disabled), so that nothing remains that
only singleton-webhook could lift:

  - every replicas-mode Deployment loses the scheduling gate
    singleton.dev/one-at-a-time and the label singleton.dev/deployment from
    its pod template, and is marked singleton.dev/released=true, so the
    webhook and its controllers, while still installed, do not put them
    back. The template changes, so each Deployment rolls once (Recreate:
    the Pod is replaced, never two at once); at most --max-in-flight roll at
    a time, each awaited until its new Pod is created. It keeps one replica
    and Recreate; what you asked for is in singleton.dev/original-*.
  - every Pod still gated is released once no other Pod of its Deployment
    is alive.
  - election-mode Deployments are left as they are: the sidecar elects on
    its own, with its Lease, Role and RoleBinding.

One line per Deployment says what it did or would do. A Deployment it could
not release gets a line saying why, and the exit status is then 1; nothing
else is changed. It can be run again at any time: what is released stays so,
and a rollout an interrupted run did not see finish is awaited.

Flags:
`

// Defaults of release.
const (
	defaultMaxInFlight    = 5
	defaultReleaseTimeout = 5 * time.Minute
)

// releaseFlags are the flags of release.
type releaseFlags struct {
	namespace     string
	allNamespaces bool
	dryRun        bool
	maxInFlight   int
	timeout       time.Duration
	kubeconfig    string
}

// parseRelease parses and checks the flags of release.
func parseRelease(args []string, stderr io.Writer) (*releaseFlags, error) {
	f := &releaseFlags{}
	fs := flag.NewFlagSet("release", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.namespace, "n", "", "release the singletons of this namespace")
	fs.StringVar(&f.namespace, "namespace", "", "same as -n")
	fs.BoolVar(&f.allNamespaces, "A", false, "release the singletons of every namespace")
	fs.BoolVar(&f.allNamespaces, "all-namespaces", false, "same as -A")
	fs.BoolVar(&f.dryRun, "dry-run", false, "say what would be done and check it with the API server (server-side dry run); change nothing")
	fs.IntVar(&f.maxInFlight, "max-in-flight", defaultMaxInFlight, "how many Deployments roll at a time")
	fs.DurationVar(&f.timeout, "timeout", defaultReleaseTimeout, "how long to wait for one Deployment's rollout, or for a gated Pod's predecessor to go")
	fs.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig file; default: $KUBECONFIG, ~/.kube/config, else the in-cluster config")
	fs.Usage = func() {
		fmt.Fprint(stderr, releaseHelp)
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return nil, err
	}
	switch {
	case fs.NArg() > 0:
		return nil, usageError("release: unexpected argument %q (name the namespace with -n, or use -A)", fs.Arg(0))
	case f.namespace == "" && !f.allNamespaces:
		return nil, usageError("release: say where: -n NAMESPACE, or -A for every namespace")
	case f.namespace != "" && f.allNamespaces:
		return nil, usageError("release: -n %s and -A exclude each other", f.namespace)
	case f.maxInFlight < 1:
		return nil, usageError("release: --max-in-flight %d: want at least 1", f.maxInFlight)
	case f.timeout <= 0:
		return nil, usageError("release: --timeout %s: want a positive duration", f.timeout)
	}
	return f, nil
}

// Release runs `singleton-webhook release`.
func Release(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f, err := parseRelease(args, stderr)
	if err != nil {
		return err
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = f.kubeconfig
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, nil).ClientConfig()
	if err != nil {
		return fmt.Errorf("release: load kubeconfig: %w", err)
	}
	cfg.UserAgent = "singleton-webhook-release"
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("release: kubernetes client: %w", err)
	}
	r := &releaser{client: cs, namespace: f.namespace, dryRun: f.dryRun, maxInFlight: f.maxInFlight,
		timeout: f.timeout, poll: time.Second, out: stdout}
	if !r.run(ctx) {
		return &ExitError{Code: 1, Err: ErrReported}
	}
	return nil
}
