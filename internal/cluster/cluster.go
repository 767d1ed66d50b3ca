package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/singleton-webhook/singleton-webhook/internal/testenv"
)

// Defaults of Options.
const (
	// DefaultNodes is the number of simulated nodes.
	DefaultNodes = 2
	// DefaultNodeMonitorPeriod and DefaultNodeMonitorGracePeriod are the
	// node-lifecycle controller's timings: a node whose heartbeats stopped
	// is NotReady after the grace period (Kubernetes: 5 s and 40 s).
	DefaultNodeMonitorPeriod      = 2 * time.Second
	DefaultNodeMonitorGracePeriod = 20 * time.Second
	// DefaultTolerationSeconds is the toleration of node.kubernetes.io/
	// not-ready and unreachable the API server gives every Pod that has none
	// (Kubernetes: 300): how long after a node is lost its Pods are evicted.
	DefaultTolerationSeconds = 30
	// startTimeout bounds the start of each component.
	startTimeout = time.Minute
)

// Options configure Start. The zero value is a usable cluster.
type Options struct {
	// Dir receives the kubeconfig, the components' logs and configuration.
	// Required.
	Dir string
	// Nodes is the number of simulated nodes, named node-0, node-1, …
	// (default DefaultNodes).
	Nodes int
	// NodeMonitorPeriod and NodeMonitorGracePeriod are the controller
	// manager's --node-monitor-period and --node-monitor-grace-period.
	NodeMonitorPeriod      time.Duration
	NodeMonitorGracePeriod time.Duration
	// TolerationSeconds is the API server's default not-ready and
	// unreachable toleration.
	TolerationSeconds int
	// CRDDirectoryPaths are CustomResourceDefinitions to install.
	CRDDirectoryPaths []string
	// JobsRunByTest names Jobs (in any namespace) whose Pods the simulated
	// nodes leave Pending once scheduled: no kwok Stage makes them Running
	// or Succeeded, so only the test, playing their kubelet, decides their
	// outcome (RunJobPod). Their deletion is simulated as for any Pod.
	JobsRunByTest []string
}

func (o *Options) defaults() error {
	if o.Dir == "" {
		return errors.New("start cluster: no directory for its files")
	}
	if o.Nodes == 0 {
		o.Nodes = DefaultNodes
	}
	if o.NodeMonitorPeriod == 0 {
		o.NodeMonitorPeriod = DefaultNodeMonitorPeriod
	}
	if o.NodeMonitorGracePeriod == 0 {
		o.NodeMonitorGracePeriod = DefaultNodeMonitorGracePeriod
	}
	if o.TolerationSeconds == 0 {
		o.TolerationSeconds = DefaultTolerationSeconds
	}
	switch {
	case o.Nodes < 0:
		return fmt.Errorf("start cluster: %d nodes: want at least 1", o.Nodes)
	case o.NodeMonitorGracePeriod < 2*o.NodeMonitorPeriod:
		return fmt.Errorf("start cluster: node monitor grace period %s must be at least twice the monitor period %s", o.NodeMonitorGracePeriod, o.NodeMonitorPeriod)
	case o.TolerationSeconds < 0:
		return fmt.Errorf("start cluster: toleration %d s: want 0 or more", o.TolerationSeconds)
	}
	return nil
}

// Cluster is a running cluster. Stop it, also after an error of the
// caller's own.
type Cluster struct {
	*testenv.ControlPlane
	// Clientset is an administrator's client.
	Clientset kubernetes.Interface
	// Nodes are the names of the simulated nodes.
	Nodes []string

	opts      Options
	kwok      string
	processes []*process
	nodes     map[string]*process
}

// Start starts etcd, kube-apiserver, kube-controller-manager, kube-scheduler
// and one kwok per node, and returns once every node is Ready and the
// controller manager has given the default namespace its ServiceAccount.
// On error nothing it started is left running.
func Start(ctx context.Context, opts Options) (c *Cluster, err error) {
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	assets, err := testenv.AssetsDir()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("start cluster: %w", err)
	}
	for _, b := range []string{"kube-controller-manager", "kube-scheduler", "kwok"} {
		if _, err := os.Stat(filepath.Join(assets, b)); err != nil {
			return nil, fmt.Errorf("start cluster: %s missing in %s (run `make controlplane kwok`)", b, assets)
		}
	}
	tol := strconv.Itoa(opts.TolerationSeconds)
	cp, err := testenv.StartControlPlane(testenv.ControlPlaneOptions{
		Dir:               opts.Dir,
		CRDDirectoryPaths: opts.CRDDirectoryPaths,
		APIServerFlags: map[string]string{
			// envtest turns ServiceAccount admission off because it runs no
			// controller manager; here one creates the ServiceAccounts.
			"disable-admission-plugins":              "",
			"default-not-ready-toleration-seconds":   tol,
			"default-unreachable-toleration-seconds": tol,
		},
	})
	if err != nil {
		return nil, err
	}
	c = &Cluster{ControlPlane: cp, opts: opts, kwok: filepath.Join(assets, "kwok"), nodes: map[string]*process{}}
	defer func() {
		if err != nil {
			err = errors.Join(err, c.Stop())
			c = nil
		}
	}()
	quiet := rest.CopyConfig(cp.Config)
	// Admission warnings are the webhook's answer to what a test asked;
	// tests read them through kubectl, not from this client's log.
	quiet.WarningHandler = rest.NoWarnings{}
	if c.Clientset, err = kubernetes.NewForConfig(quiet); err != nil {
		return nil, fmt.Errorf("start cluster: client: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	if err := c.startControllerManager(ctx, assets); err != nil {
		return nil, err
	}
	if err := c.startScheduler(ctx, assets); err != nil {
		return nil, err
	}
	if err := c.startNodes(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// Stop stops every component, the nodes first, and removes the control
// plane's data and the files Start wrote but the logs.
func (c *Cluster) Stop() error {
	for _, p := range c.nodes {
		p.stop()
	}
	for i := len(c.processes) - 1; i >= 0; i-- {
		c.processes[i].stop()
	}
	err := c.ControlPlane.Stop()
	for _, f := range []string{"ca.crt", "kwok-stages.yaml", "kube-controller-manager-certs", "kube-scheduler-certs"} {
		err = errors.Join(err, os.RemoveAll(filepath.Join(c.opts.Dir, f)))
	}
	return err
}

// LogPaths lists the log file of every component the cluster started, by
// component name.
func (c *Cluster) LogPaths() map[string]string {
	m := map[string]string{}
	for _, p := range c.processes {
		m[p.name] = p.logPath
	}
	for _, p := range c.nodes {
		m[p.name] = p.logPath
	}
	return m
}

func (c *Cluster) startControllerManager(ctx context.Context, assets string) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	ca := filepath.Join(c.opts.Dir, "ca.crt")
	if err := os.WriteFile(ca, c.Config.CAData, 0o600); err != nil {
		return fmt.Errorf("kube-controller-manager: write the cluster CA: %w", err)
	}
	p, err := startProcess(c.opts.Dir, "kube-controller-manager", filepath.Join(assets, "kube-controller-manager"),
		append(c.componentFlags(port, "kube-controller-manager"),
			"--controllers=*",
			"--use-service-account-credentials",
			"--service-account-private-key-file="+filepath.Join(c.CertDir, "sa-signer.key"),
			"--root-ca-file="+ca,
			"--node-monitor-period="+c.opts.NodeMonitorPeriod.String(),
			"--node-monitor-grace-period="+c.opts.NodeMonitorGracePeriod.String(),
		)...)
	if err != nil {
		return err
	}
	c.processes = append(c.processes, p)
	if err := p.waitHealthy(ctx, port); err != nil {
		return err
	}
	// The ServiceAccount controller works: Pods can be admitted.
	return p.poll(ctx, "creating the default ServiceAccount", func() error {
		_, err := c.Clientset.CoreV1().ServiceAccounts(metav1.NamespaceDefault).Get(ctx, "default", metav1.GetOptions{})
		return err
	})
}

func (c *Cluster) startScheduler(ctx context.Context, assets string) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	p, err := startProcess(c.opts.Dir, "kube-scheduler", filepath.Join(assets, "kube-scheduler"), c.componentFlags(port, "kube-scheduler")...)
	if err != nil {
		return err
	}
	c.processes = append(c.processes, p)
	return p.waitHealthy(ctx, port)
}

// componentFlags are the flags kube-controller-manager and kube-scheduler
// share: the administrator's kubeconfig, no leader election (one of each),
// and their own HTTPS port on loopback.
func (c *Cluster) componentFlags(port int, name string) []string {
	return []string{
		"--kubeconfig=" + c.Kubeconfig,
		"--authentication-kubeconfig=" + c.Kubeconfig,
		"--authorization-kubeconfig=" + c.Kubeconfig,
		"--leader-elect=false",
		"--bind-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(port),
		"--cert-dir=" + filepath.Join(c.opts.Dir, name+"-certs"),
	}
}

// Node returns the Node object of a simulated node.
func (c *Cluster) Node(ctx context.Context, name string) (*corev1.Node, error) {
	return c.Clientset.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
}
