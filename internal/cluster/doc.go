// Package cluster runs a whole Kubernetes cluster on loopback for the
// cluster tier of the tests and for `make run`: etcd and kube-apiserver
// (through internal/testenv), kube-controller-manager with all its default
// controllers, kube-scheduler, and kwok simulating the nodes. Every
// component but the kubelet is the real one, built from Go modules into
// KUBEBUILDER_ASSETS by `make controlplane` and `make kwok`.
//
// Nodes are simulated: no container runs. kwok moves Pods through their
// lifecycle with the Stages in stages.yaml, the way a kubelet would: Pending
// → Running and Ready with a Pod IP; on deletion the Pod stays Terminating
// until its grace period has passed (or until the test marks its containers
// stopped, see MarkStopped), then goes away. Each node has its own kwok
// process, so StopNode takes a node off the network as far as the control
// plane can tell (its heartbeats stop) and StartNode brings it back.
//
// The Pods of the Jobs named in Options.JobsRunByTest are left to the test:
// no Stage starts or completes them, and RunJobPods plays their kubelet,
// running their container as the test says and setting the Pod Succeeded
// or Failed from its exit code (the install tier runs the chart's
// pre-delete hook Job so).
//
// Every component writes its log into Options.Dir; a component that fails
// to start is reported in one line naming it and its log, and Start leaves
// no process behind.
package cluster
