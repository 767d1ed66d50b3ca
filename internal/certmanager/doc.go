//go:build integration

// Package certmanager runs the real cert-manager in-process against a test
// API server: the controllers that issue Certificates from self-signed and
// CA Issuers, and cainjector for webhook configurations. It is built from
// the github.com/cert-manager/cert-manager module the project requires, the
// same code as the cert-manager images, without its webhook (which only
// validates and defaults cert-manager resources).
//
//	crds, err := certmanager.CRDDir()         // for envtest's CRDDirectoryPaths
//	cm, err := certmanager.Start(ctx, certmanager.Options{Kubeconfig: path})
//	defer cm.Stop()
//	err = certmanager.Renew(ctx, cm.Client, "ns", "name") // as `cmctl renew`
//
// The package is compiled only with the integration build tag: cert-manager
// is large, and nothing outside the integration tier needs it.
package certmanager
