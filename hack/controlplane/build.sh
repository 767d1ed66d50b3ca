#!/usr/bin/env bash
# Builds kube-apiserver, kube-controller-manager, kube-scheduler, kubectl and
# etcd from the Go modules pinned in
# hack/controlplane/go.mod into bin/k8s/ (the KUBEBUILDER_ASSETS of the
# integration tier and of `make run`). Skips the build when the binaries were
# built from the same go.mod/go.sum. Cold: about 5-6 minutes on 2 cores.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/../../bin/k8s}
mkdir -p "$out"
out=$(cd "$out" && pwd)
stamp=$(cat "$here/go.mod" "$here/go.sum" "$here/build.sh" | sha256sum | cut -d' ' -f1)
bins="etcd kube-apiserver kube-controller-manager kube-scheduler kubectl"
have=1
for b in $bins; do [[ -x $out/$b ]] || have=0; done
if [[ $have == 1 && "$(cat "$out/.stamp" 2>/dev/null)" == "$stamp" ]]; then
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
