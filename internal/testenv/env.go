package testenv

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/singleton-webhook/singleton-webhook/certs"
	"github.com/singleton-webhook/singleton-webhook/internal/testutil"
)

// Options configure Start. The zero value is the usual suite: a control
// plane with the project's webhook configuration installed.
type Options struct {
	// CRDDirectoryPaths are CustomResourceDefinitions to install, as in
	// ControlPlaneOptions.
	CRDDirectoryPaths []string
	// SkipWebhookConfiguration leaves the API server without the webhook
	// configuration: a baseline for benchmarks, or for a suite that installs
	// its own with InstallWebhookConfiguration. It also leaves out the
	// webhook's identity (InstallWebhookIdentity), so StartWebhook runs as
	// the administrator.
	SkipWebhookConfiguration bool
}

// Env is a running control plane prepared for the webhook. The webhook
// itself is started with StartWebhook.
type Env struct {
	*ControlPlane
	// Client is an uncached controller-runtime client with client-go's scheme.
	Client client.Client
	// Clientset is a typed client-go clientset.
	Clientset kubernetes.Interface
	// Root is the module root; Root/manifests, Root/examples.
	Root string
	// KubectlPath is the kubectl binary Kubectl runs.
	KubectlPath string
	// WebhookPort is the loopback port the in-process webhook serves on, the
	// same across restarts; WebhookURL is https://127.0.0.1:WebhookPort.
	WebhookPort int
	WebhookURL  string
	// CertDir holds tls.crt and tls.key, a serving certificate for 127.0.0.1
	// and localhost signed by CABundle (PEM), which the installed webhook
	// configuration trusts.
	CertDir  string
	CABundle []byte

	dir        string
	configured bool
	// identity: the webhook's ServiceAccount, RBAC and self-restraint
	// policy are installed, and StartWebhook runs as that account.
	identity bool
}

// Start starts a control plane for the test, stopped by t.Cleanup, and
// installs the project's webhook configuration pointing at WebhookURL, and
// the webhook's ServiceAccount, RBAC and self-restraint policy from
// manifests/, unless opts say otherwise. It fails the test when
// KUBEBUILDER_ASSETS is unset.
func Start(t testing.TB, opts Options) *Env {
	t.Helper()
	setLogger()
	root, err := ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	kubectl, err := KubectlPath(root)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cp, err := StartControlPlane(ControlPlaneOptions{Dir: dir, CRDDirectoryPaths: opts.CRDDirectoryPaths})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := cp.Stop(); err != nil {
			t.Errorf("%v", err)
		}
	})
	e := &Env{ControlPlane: cp, Root: root, KubectlPath: kubectl, dir: dir, CertDir: filepath.Join(dir, "serving-certs")}
	if e.Client, err = client.New(cp.Config, client.Options{Scheme: clientgoscheme.Scheme}); err != nil {
		t.Fatalf("create client: %v", err)
	}
	if e.Clientset, err = kubernetes.NewForConfig(cp.Config); err != nil {
		t.Fatalf("create clientset: %v", err)
	}
	if err := e.prepareServing(); err != nil {
		t.Fatal(err)
	}
	if !opts.SkipWebhookConfiguration {
		e.InstallWebhookConfiguration(t, e.CABundle)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := InstallWebhookIdentity(ctx, cp.Config, root); err != nil {
			t.Fatal(err)
		}
		e.identity = true
	}
	return e
}

// setLogger routes controller-runtime's logs to stderr in verbose runs (go
// test -v) and drops them otherwise.
func setLogger() {
	var w io.Writer = io.Discard
	if testing.Verbose() {
		w = os.Stderr
	}
	logf.SetLogger(zap.New(zap.UseDevMode(true), zap.WriteTo(w)))
}

// prepareServing picks the webhook's port and writes its certificate.
func (e *Env) prepareServing() error {
	port, err := testutil.PickPort()
	if err != nil {
		return fmt.Errorf("pick a webhook port: %w", err)
	}
	e.WebhookPort = port
	e.WebhookURL = fmt.Sprintf("https://127.0.0.1:%d", e.WebhookPort)
	ss, err := certs.NewSelfSigned([]string{"127.0.0.1", "localhost"})
	if err != nil {
		return err
	}
	if err := os.MkdirAll(e.CertDir, 0o700); err != nil {
		return fmt.Errorf("write serving certificate: %w", err)
	}
	for name, b := range map[string][]byte{"tls.crt": ss.CertPEM, "tls.key": ss.KeyPEM} {
		if err := os.WriteFile(filepath.Join(e.CertDir, name), b, 0o600); err != nil {
			return fmt.Errorf("write serving certificate: %w", err)
		}
	}
	e.CABundle = ss.CAPEM
	return nil
}

// InstallWebhookConfiguration installs (or replaces) the project's
// manifests/mutatingwebhook.yaml pointing at WebhookURL and trusting
// caBundle. A nil caBundle leaves it to cainjector, which the configuration's
// cert-manager.io/inject-ca-from annotation asks for.
func (e *Env) InstallWebhookConfiguration(t testing.TB, caBundle []byte) {
	t.Helper()
	c, err := LocalWebhookConfiguration(filepath.Join(e.Root, WebhookManifest), e.WebhookURL, caBundle)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := InstallWebhookConfiguration(ctx, e.Config, c); err != nil {
		t.Fatal(err)
	}
	e.configured = true
}

// Kubectl runs the kubectl binary against the control plane with stdin as
// its standard input (empty: none) and returns what it printed. err is
// non-nil when kubectl exits non-zero (an *exec.ExitError) or cannot run.
func (e *Env) Kubectl(t testing.TB, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, e.KubectlPath, append([]string{"--kubeconfig", e.Kubeconfig}, args...)...)
	cmd.Env = append(os.Environ(), "KUBECACHEDIR="+filepath.Join(e.dir, "kubectl-cache"))
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	t.Logf("kubectl %s: exit %v\n%s%s", strings.Join(args, " "), err, out.String(), errOut.String())
	return out.String(), errOut.String(), err
}
