// Package cluster holds the cluster tier of singleton-webhook's tests: a
// whole cluster on loopback (kube-apiserver, etcd, kube-controller-manager,
// kube-scheduler; kwok simulating the nodes, see internal/cluster) with the
// built bin/singleton-webhook serving and registered. Real Deployment,
// ReplicaSet, StatefulSet, EndpointSlice, node-lifecycle and pod-GC
// controllers act on real Pod objects; only the containers do not run.
//
// The tests carry the build tag "integration":
//
//	make controlplane kwok build
//	KUBEBUILDER_ASSETS=$PWD/bin/k8s go test -tags integration ./test/cluster/
//
// CLUSTER_REPORT=FILE writes the fault table (coexistence and
// unavailability per workload and fault) as Markdown; `make bench` uses it.
package cluster
