package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/singleton-webhook/singleton-webhook/internal/ops"
)

const statusHelp = `Usage: singleton-webhook status [DEPLOYMENT] [flags]
       kubectl singleton status [DEPLOYMENT] [flags]

One row per singleton Deployment (annotated singleton: "true"): its mode and
enforcement, whether the webhook has admitted it (NO: annotated before the
install, not enforced yet), the Pods alive, the Pod that runs (replicas mode)
or leads (election mode: the Lease's epoch and how long it stays valid), and
the Pod held by the scheduling gate, what it waits for and since when.

It reads with your kubeconfig and needs only these rights, in the namespaces
shown (-A: cluster-wide, else it reads namespace by namespace what it may):
  get, list  deployments.apps
  get, list  pods                      (only those labelled singleton.dev/deployment)
  get, list  leases.coordination.k8s.io
One list per kind, whatever the number of singletons.

What could not be read is said on stderr, one line each; the output is then
marked partial ("partial": true in JSON) and the exit status is 1.
-o json and -o yaml follow the versioned schema status.singleton.dev/v1
(docs/status-check.md).

Flags:
`

// clusterFlags are the flags status and check share: where and how to read.
type clusterFlags struct {
	kubeconfig string
	context    string
	namespace  string
	all        bool
	output     string
	timeout    time.Duration
}

// defaultRequestTimeout bounds each API request of status and check, so an
// unreachable API server is reported instead of waited for.
const defaultRequestTimeout = 20 * time.Second

func (f *clusterFlags) bind(fs *flag.FlagSet) {
	fs.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig file; default: $KUBECONFIG, ~/.kube/config, or the in-cluster config")
	fs.StringVar(&f.context, "context", "", "kubeconfig context to use; default: the current context")
	for _, name := range []string{"n", "namespace"} {
		fs.StringVar(&f.namespace, name, "", "namespace to read; default: the context's namespace")
	}
	for _, name := range []string{"A", "all-namespaces"} {
		fs.BoolVar(&f.all, name, false, "read every namespace")
	}
	for _, name := range []string{"o", "output"} {
		fs.StringVar(&f.output, name, "", `output format: "wide", "json" or "yaml"; default: a table`)
	}
	fs.DurationVar(&f.timeout, "request-timeout", defaultRequestTimeout, "timeout of each API request")
}

// parseInterspersed parses flags before and after one optional positional
// argument, as kubectl does (`status app -n team`).
func parseInterspersed(fs *flag.FlagSet, args []string) (string, error) {
	if err := parseFlags(fs, args); err != nil {
		return "", err
	}
	if fs.NArg() == 0 {
		return "", nil
	}
	name, rest := fs.Arg(0), fs.Args()[1:]
	if err := parseFlags(fs, rest); err != nil {
		return "", err
	}
	if fs.NArg() > 0 {
		return "", usageError("%s: unexpected argument %q: at most one Deployment name", fs.Name(), fs.Arg(0))
	}
	return name, nil
}

// client loads the caller's kubeconfig as kubectl does and returns a
// clientset, the rest config and the namespace to read.
func (f *clusterFlags) client(wrap func(*rest.Config)) (kubernetes.Interface, *rest.Config, ops.Scope, error) {
	switch f.output {
	case ops.OutputTable, ops.OutputWide, ops.OutputJSON, ops.OutputYAML:
	default:
		return nil, nil, ops.Scope{}, usageError("-o %q: want wide, json or yaml", f.output)
	}
	if f.all && f.namespace != "" {
		return nil, nil, ops.Scope{}, usageError("-A and -n exclude each other")
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = f.kubeconfig
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: f.context})
	rc, err := cc.ClientConfig()
	if clientcmd.IsEmptyConfig(err) {
		return nil, nil, ops.Scope{}, errors.New("no kubeconfig found: pass --kubeconfig FILE, set $KUBECONFIG, or run in a Pod")
	}
	if err != nil {
		return nil, nil, ops.Scope{}, fmt.Errorf("load kubeconfig: %w", err)
	}
	scope := ops.Scope{Namespace: f.namespace, AllNamespaces: f.all}
	if scope.Namespace == "" && !f.all {
		if scope.Namespace, _, err = cc.Namespace(); err != nil {
			return nil, nil, ops.Scope{}, fmt.Errorf("load kubeconfig: %w", err)
		}
	}
	rc.Timeout = f.timeout
	rc.WarningHandler = rest.NoWarnings{}
	if wrap != nil {
		wrap(rc)
	}
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, nil, ops.Scope{}, fmt.Errorf("create client: %w", err)
	}
	return cs, rc, scope, nil
}

// apiError says which API server a failed read went to, unless the API
// server itself answered (then its message names the problem).
func apiError(rc *rest.Config, err error) error {
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		return err
	}
	return fmt.Errorf("API server %s: %w", rc.Host, err)
}

// Status runs `singleton-webhook status`. wrap, if set, changes the client
// configuration (tests count requests with it).
func Status(ctx context.Context, args []string, stdout, stderr io.Writer, wrap func(*rest.Config)) error {
	f := &clusterFlags{}
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	f.bind(fs)
	fs.Usage = func() {
		fmt.Fprint(stderr, statusHelp)
		fs.PrintDefaults()
	}
	name, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	cs, rc, scope, err := f.client(wrap)
	if err != nil {
		return err
	}
	scope.Name = name
	snap, err := ops.Read(ctx, cs, scope)
	if err != nil {
		return apiError(rc, err)
	}
	list := ops.Status(snap)
	if err := ops.WriteStatus(stdout, list, f.output, scope.AllNamespaces, snap.Now); err != nil {
		return err
	}
	if name != "" && len(list.Items) == 0 && !list.Partial {
		return fmt.Errorf("deployment %q in namespace %q is not a singleton or does not exist", name, scope.Namespace)
	}
	return reportPartial(list.Errors, stderr)
}

// reportPartial prints what could not be read, one line each, and fails
// with exit status 1 if anything could not.
func reportPartial(errs []string, stderr io.Writer) error {
	if len(errs) == 0 {
		return nil
	}
	for _, e := range errs {
		fmt.Fprintln(stderr, "singleton-webhook: partial:", e)
	}
	return &ExitError{Code: 1, Err: ErrReported}
}
