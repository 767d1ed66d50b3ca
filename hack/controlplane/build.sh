#!/usr/bin/env bash
# Builds kube-apiserver, kube-controller-manager, kube-scheduler, kubectl and
# etcd from the Go modules pinned in
# hack/controlplane/go.mod into bin/k8s/ (the KUBEBUILDER_ASSETS of the
# integration tier and of `make run`). Skips the build when the binaries were
# built from the same go.mod/go.sum. Cold: about 5 minutes on a quiet 2-core
# machine (kube-apiserver 3.5, controller-manager 1.2, scheduler 0.1 more).
set -euo pipefail
source "$(dirname "$0")/../pinned.sh"
pinned_init "$(dirname "$0")/../../bin/k8s" "${1:-}"
bins="etcd kube-apiserver kube-controller-manager kube-scheduler kubectl"
# shellcheck disable=SC2086 # a list of names
if pinned_fresh .stamp $bins; then
  exit 0
fi
echo "building the control plane ($bins) into $out; the first build takes minutes" >&2
rm -f "$out/.stamp"
cd "$here"
# Stamp the version the API server reports (/version, kubectl version) the way
# the Kubernetes release build does.
kver=$(go list -m -f '{{.Version}}' k8s.io/kubernetes)
minor=$(echo "$kver" | cut -d. -f2)
vpkgs="k8s.io/component-base/version k8s.io/client-go/pkg/version"
ldflags=""
for p in $vpkgs; do
  ldflags+=" -X $p.gitVersion=$kver -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
done
go build -trimpath -o "$out/etcd" go.etcd.io/etcd/server/v3
go build -trimpath -ldflags "$ldflags" -o "$out/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver
go build -trimpath -ldflags "$ldflags" -o "$out/kubectl" k8s.io/kubernetes/cmd/kubectl
go build -trimpath -ldflags "$ldflags" -o "$out/kube-scheduler" k8s.io/kubernetes/cmd/kube-scheduler
go build -trimpath -ldflags "$ldflags" -o "$out/kube-controller-manager" k8s.io/kubernetes/cmd/kube-controller-manager
echo "$stamp" > "$out/.stamp"
"$out/kube-apiserver" --version >&2
