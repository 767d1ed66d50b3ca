#!/usr/bin/env bash
# `make run`: a local cluster (etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler and kwok nodes from bin/k8s) with
# bin/singleton-webhook serving and registered. Prints the KUBECONFIG to
# export, stays in the foreground; Ctrl-C (or SIGTERM) stops everything.
# Flags are passed to hack/localcluster (-run-dir, -webhook-binary).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export KUBEBUILDER_ASSETS=${KUBEBUILDER_ASSETS:-$root/bin/k8s}
if [[ ! -x bin/singleton-webhook || ! -x $KUBEBUILDER_ASSETS/kube-apiserver ]]; then
  echo "run.sh: bin/singleton-webhook or the control plane is missing; use \`make run\`, which builds them" >&2
  exit 1
fi
# The integration tag compiles in cert-manager, for -for-helm.
go build -tags integration -o bin/localcluster ./hack/localcluster
# exec: signals reach the program that stops the processes it started.
exec bin/localcluster "$@"
