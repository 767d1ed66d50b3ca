package cluster

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"

	"github.com/singleton-webhook/singleton-webhook/internal/testenv"
)

// Webhook is `singleton-webhook serve` running as a child process against
// the cluster, with a self-signed certificate, registered through the
// project's manifests/mutatingwebhook.yaml rewritten to its local URL.
type Webhook struct {
	// URL is the admission server's base URL.
	URL string
	// MetricsURL is where it serves /metrics.
	MetricsURL string
	// LogPath is its log file.
	LogPath string

	p      *process
	caPath string
}

// StartWebhook starts binary serve against the cluster (its controllers
// included), waits until it is ready, installs the webhook configuration and
// waits until the API server mutates through it. serve runs as the
// webhook's ServiceAccount (impersonated), with manifests/'s RBAC and
// self-restraint policy installed first: what its controllers do must pass
// both, as in production. extraArgs are appended to serve's flags. Stop it
// with StopWebhook.
func (c *Cluster) StartWebhook(ctx context.Context, binary string, extraArgs ...string) (*Webhook, error) {
	root, err := testenv.ModuleRoot()
	if err != nil {
		return nil, err
	}
	installCtx, cancelInstall := context.WithTimeout(ctx, startTimeout)
	defer cancelInstall()
	if err := testenv.InstallWebhookIdentity(installCtx, c.Config, root); err != nil {
		return nil, err
	}
	kubeconfig := filepath.Join(c.opts.Dir, "webhook.kubeconfig")
	if err := testenv.WriteKubeconfig(testenv.AsWebhook(c.Config), kubeconfig); err != nil {
		return nil, err
	}
	ports := make([]int, 3)
	for i := range ports {
		var err error
		if ports[i], err = freePort(); err != nil {
			return nil, err
		}
	}
	w := &Webhook{
		URL:        fmt.Sprintf("https://127.0.0.1:%d", ports[0]),
		MetricsURL: fmt.Sprintf("http://127.0.0.1:%d/metrics", ports[2]),
		caPath:     filepath.Join(c.opts.Dir, "webhook-ca.crt"),
	}
	_ = os.Remove(w.caPath) // a stale CA must not pass for this run's
	args := append([]string{"serve",
		"--self-signed", "--self-signed-ca-out", w.caPath,
		"--kubeconfig", kubeconfig,
		"--webhook-port", strconv.Itoa(ports[0]),
		"--health-probe-bind-address", "127.0.0.1:" + strconv.Itoa(ports[1]),
		"--metrics-bind-address", "127.0.0.1:" + strconv.Itoa(ports[2]),
		// A local cluster: metrics over plain HTTP, for curl.
		"--metrics-secure=false",
		// Outside the cluster serve cannot know its namespace: exclude the
		// one manifests/mutatingwebhook.yaml excludes, as in a Pod there.
		"--excluded-namespaces=kube-system,singleton-system",
	}, extraArgs...)
	p, err := startProcess(c.opts.Dir, "singleton-webhook", binary, args...)
	if err != nil {
		return nil, err
	}
	w.p, w.LogPath = p, p.logPath
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	if err := w.register(ctx, c, ports[1]); err != nil {
		p.stop()
		return nil, err
	}
	return w, nil
}

func (w *Webhook) register(ctx context.Context, c *Cluster, probePort int) error {
	readyURL := fmt.Sprintf("http://127.0.0.1:%d/readyz", probePort)
	var ca []byte
	err := w.p.poll(ctx, "becoming ready on "+readyURL, func() error {
		var err error
		if ca, err = os.ReadFile(w.caPath); err != nil || len(ca) == 0 {
			return errors.New("no CA written yet")
		}
		return getOK(http.DefaultClient, readyURL)
	})
	if err != nil {
		return err
	}
	root, err := testenv.ModuleRoot()
	if err != nil {
		return err
	}
	cfg, err := testenv.LocalWebhookConfiguration(filepath.Join(root, testenv.WebhookManifest), w.URL, ca)
	if err != nil {
		return err
	}
	if err := testenv.InstallWebhookConfiguration(ctx, c.Config, cfg); err != nil {
		return w.p.failed("being registered", err)
	}
	if err := testenv.WaitForMutation(ctx, c.Config); err != nil {
		return w.p.failed("mutating a first Deployment", err)
	}
	return nil
}

// Exited is closed when the webhook process exits.
func (w *Webhook) Exited() <-chan struct{} { return w.p.exited }

// Err is the webhook's exit error, once Exited is closed.
func (w *Webhook) Err() error { return w.p.err }

// Stop stops the webhook process (SIGTERM, then SIGKILL) and removes its CA
// file; the log stays for a post-mortem.
func (w *Webhook) Stop() {
	w.p.stop()
	_ = os.Remove(w.caPath)
}
