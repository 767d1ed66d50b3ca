// Package integration holds the integration tier of singleton-webhook: tests
// against a real kube-apiserver and etcd (see internal/testenv), driven with
// client-go and with the kubectl binary built by `make controlplane`. The
// tests carry the build tag "integration":
//
//	make controlplane
//	KUBEBUILDER_ASSETS=$PWD/bin/k8s go test -tags integration ./test/integration/...
package integration
