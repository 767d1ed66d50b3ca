//go:build integration

package main

import (
	"context"

	"github.com/singleton-webhook/singleton-webhook/internal/certmanager"
)

// certManagerCRDs is the directory of cert-manager's CRDs.
func certManagerCRDs() (string, error) { return certmanager.CRDDir() }

// startCertManager runs cert-manager's controllers and cainjector in this
// process against the cluster, as the install tests do; stop returns what
// they reported.
func startCertManager(ctx context.Context, kubeconfig string) (stop func() error, err error) {
	cm, err := certmanager.Start(ctx, certmanager.Options{Kubeconfig: kubeconfig})
	if err != nil {
		return nil, err
	}
	return cm.Stop, nil
}
