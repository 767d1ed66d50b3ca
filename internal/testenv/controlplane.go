package testenv

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// ControlPlaneOptions configure StartControlPlane.
type ControlPlaneOptions struct {
	// Dir receives the kubeconfig file. Required.
	Dir string
	// CRDDirectoryPaths are directories or files of CustomResourceDefinitions
	// installed once the API server is up (cert-manager's deploy/crds, say).
	// A missing path is an error.
	CRDDirectoryPaths []string
	// APIServerFlags are kube-apiserver flags set on top of envtest's
	// defaults, without the leading "--"; an empty value unsets a default.
	APIServerFlags map[string]string
}

// ControlPlane is etcd and kube-apiserver on loopback, started by envtest
// from the binaries in KUBEBUILDER_ASSETS. Their data and certificate
// directories are temporary and removed by Stop.
type ControlPlane struct {
	// Config is an administrator's (system:masters) client configuration.
	Config *rest.Config
	// Kubeconfig is the path of a kubeconfig file for Config, for kubectl
	// and child processes.
	Kubeconfig string
	// CertDir is kube-apiserver's certificate directory; it holds the
	// service-account signing key, sa-signer.key.
	CertDir string

	env *envtest.Environment
}

// StartControlPlane starts etcd and kube-apiserver, installs the CRDs and
// writes Dir/kubeconfig. The caller must Stop it, even after an error from
// a later step of its own.
func StartControlPlane(opts ControlPlaneOptions) (*ControlPlane, error) {
	if opts.Dir == "" {
		return nil, errors.New("start control plane: no directory for the kubeconfig")
	}
	assets, err := AssetsDir()
	if err != nil {
		return nil, err
	}
	existing := false
	env := &envtest.Environment{
		BinaryAssetsDirectory: assets,
		UseExistingCluster:    &existing,
		CRDDirectoryPaths:     opts.CRDDirectoryPaths,
		ErrorIfCRDPathMissing: true,
	}
	api := env.ControlPlane.GetAPIServer()
	for k, v := range opts.APIServerFlags {
		if v == "" {
			api.Configure().Disable(k)
			continue
		}
		api.Configure().Set(k, v)
	}
	cfg, err := env.Start()
	if err != nil {
		_ = env.Stop()
		return nil, fmt.Errorf("start control plane from %s: %w", assets, err)
	}
	cp := &ControlPlane{Config: cfg, Kubeconfig: filepath.Join(opts.Dir, "kubeconfig"), CertDir: api.CertDir, env: env}
	if err := os.WriteFile(cp.Kubeconfig, env.KubeConfig, 0o600); err != nil {
		_ = cp.Stop()
		return nil, fmt.Errorf("write kubeconfig: %w", err)
	}
	return cp, nil
}

// Stop stops kube-apiserver and etcd, removes their temporary directories
// and the kubeconfig file.
func (c *ControlPlane) Stop() error {
	err := c.env.Stop()
	if rmErr := os.Remove(c.Kubeconfig); rmErr != nil && !errors.Is(rmErr, os.ErrNotExist) {
		err = errors.Join(err, rmErr)
	}
	if err != nil {
		return fmt.Errorf("stop control plane: %w", err)
	}
	return nil
}
