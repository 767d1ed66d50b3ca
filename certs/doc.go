// Package certs provides the webhook's serving certificate: from files that
// cert-manager issues into a Secret (reloaded when the kubelet updates the
// mounted files), or from a self-signed CA generated in memory for local runs
// and tests.
package certs
