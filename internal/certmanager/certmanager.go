//go:build integration

package certmanager

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	cmclient "github.com/cert-manager/cert-manager/pkg/client/clientset/versioned"
	controllerpkg "github.com/cert-manager/cert-manager/pkg/controller"

	// The controllers register themselves with controllerpkg.Known() when
	// imported; the issuers register their setup with pkg/issuer.
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/approver"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/ca"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/selfsigned"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/issuing"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/keymanager"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/readiness"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/requestmanager"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/revisionmanager"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/trigger"
	_ "github.com/cert-manager/cert-manager/pkg/controller/issuers"
	_ "github.com/cert-manager/cert-manager/pkg/issuer/ca"
	_ "github.com/cert-manager/cert-manager/pkg/issuer/selfsigned"
)

// Controllers returns the names of the cert-manager controllers Start runs
// (as cert-manager's --controllers flag names them): what a Certificate
// needs from a self-signed or a CA Issuer, from the trigger to the Secret and
// the Ready condition.
func Controllers() []string {
	return []string{
		"issuers",
		"certificaterequests-approver",
		"certificaterequests-issuer-selfsigned",
		"certificaterequests-issuer-ca",
		"certificates-trigger",
		"certificates-key-manager",
		"certificates-request-manager",
		"certificates-issuing",
		"certificates-readiness",
		"certificates-revision-manager",
	}
}

// Defaults of the cert-manager controller flags that the controllers read.
const (
	requestMinimumBackoff = time.Hour
	requestMaximumBackoff = 32 * time.Hour
	workersPerController  = 5
)

// Options configure Start.
type Options struct {
	// Kubeconfig is the path of a kubeconfig file for the API server; the
	// controllers load it as cert-manager's --kubeconfig. Required.
	Kubeconfig string
	// WithoutCAInjector runs the issuing controllers only.
	WithoutCAInjector bool
}

// CertManager is a running in-process cert-manager.
type CertManager struct {
	// Client is a cert-manager clientset for the same API server.
	Client cmclient.Interface

	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	errs   []error
}

// Start runs the Controllers, and cainjector unless opts say otherwise,
// until Stop is called or ctx is done. It returns once their caches are
// filled, so a Certificate created afterwards is seen.
func Start(ctx context.Context, opts Options) (*CertManager, error) {
	if opts.Kubeconfig == "" {
		return nil, errors.New("start cert-manager: no kubeconfig")
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", opts.Kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("start cert-manager: load kubeconfig: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	cm := &CertManager{cancel: cancel}
	if cm.Client, err = cmclient.NewForConfig(cfg); err != nil {
		cancel()
		return nil, fmt.Errorf("start cert-manager: %w", err)
	}
	if err := cm.startControllers(ctx, opts.Kubeconfig); err != nil {
		cm.Stop()
		return nil, err
	}
	if !opts.WithoutCAInjector {
		if err := cm.startCAInjector(ctx, cfg); err != nil {
			cm.Stop()
			return nil, err
		}
	}
	return cm, nil
}

// startControllers builds the controllers as cert-manager's controller
// binary does: one ContextFactory, a constructor per controller name, then
// the shared informer factories started once every controller has asked
// for its informers.
func (cm *CertManager) startControllers(ctx context.Context, kubeconfig string) error {
	factory, err := controllerpkg.NewContextFactory(ctx, controllerpkg.ContextOptions{
		Kubeconfig:         kubeconfig,
		KubernetesAPIQPS:   50,
		KubernetesAPIBurst: 100,
		IssuerOptions:      controllerpkg.IssuerOptions{ClusterResourceNamespace: "kube-system"},
		CertificateOptions: controllerpkg.CertificateOptions{
			CertificateRequestMinimumBackoffDuration: requestMinimumBackoff,
			CertificateRequestMaximumBackoffDuration: requestMaximumBackoff,
		},
	})
	if err != nil {
		return fmt.Errorf("start cert-manager: %w", err)
	}
	known := controllerpkg.Known()
	names := Controllers()
	var ctrls []controllerpkg.Interface
	for _, name := range names {
		construct, ok := known[name]
		if !ok {
			return fmt.Errorf("start cert-manager: controller %q is not registered", name)
		}
		c, err := construct(factory)
		if err != nil {
			return fmt.Errorf("start cert-manager: construct controller %s: %w", name, err)
		}
		ctrls = append(ctrls, c)
	}
	shared, err := factory.Build("informers")
	if err != nil {
		return fmt.Errorf("start cert-manager: %w", err)
	}
	shared.KubeSharedInformerFactory.Start(ctx.Done())
	shared.SharedInformerFactory.Start(ctx.Done())
	for i, c := range ctrls {
		cm.run(names[i], func() error { return c.Run(workersPerController, ctx) })
	}
	for typ, ok := range shared.SharedInformerFactory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return fmt.Errorf("start cert-manager: cache of %v not synced", typ)
		}
	}
	for typ, ok := range shared.KubeSharedInformerFactory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return fmt.Errorf("start cert-manager: cache of %s not synced", typ)
		}
	}
	return nil
}

// run runs fn in a goroutine and records its error.
func (cm *CertManager) run(name string, fn func() error) {
	cm.wg.Add(1)
	go func() {
		defer cm.wg.Done()
		if err := fn(); err != nil {
			cm.mu.Lock()
			cm.errs = append(cm.errs, fmt.Errorf("%s: %w", name, err))
			cm.mu.Unlock()
		}
	}()
}

// Stop stops every controller and waits for them. It returns what they
// failed with, if anything.
func (cm *CertManager) Stop() error {
	cm.cancel()
	cm.wg.Wait()
	cm.mu.Lock()
	defer cm.mu.Unlock()
	return errors.Join(cm.errs...)
}

// restConfig is a copy of cfg for one component, named in the user agent.
func restConfig(cfg *rest.Config, component string) *rest.Config {
	c := rest.CopyConfig(cfg)
	c.UserAgent = "cert-manager-" + component + " (in-process)"
	return c
}
