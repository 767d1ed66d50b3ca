#!/usr/bin/env bash
# Builds the developer tools pinned in hack/tools/go.mod into bin/tools/
# (helm, for the chart checks and install tests). Skips the build when the
# binaries were built from the same go.mod/go.sum. Cold: see docs/install.md.
#   hack/tools/build.sh [OUT]
set -euo pipefail
source "$(dirname "$0")/../pinned.sh"
pinned_init "$(dirname "$0")/../../bin/tools" "${1:-}"
if pinned_fresh .stamp helm; then
  exit 0
fi
echo "building helm into $out; the first build takes minutes" >&2
rm -f "$out/.stamp"
cd "$here"
hver=$(go list -m -f '{{.Version}}' helm.sh/helm/v3)
# Stamp the version `helm version` reports and the Kubernetes version that
# `helm template` and `helm lint` assume (1.<minor of client-go>), as helm's own
# release build does; unstamped, helm assumes Kubernetes 1.20.
kminor=$(go list -m -f '{{.Version}}' k8s.io/client-go | cut -d. -f2)
ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$hver"
for p in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
  ldflags+=" -X $p.k8sVersionMajor=1 -X $p.k8sVersionMinor=$kminor"
done
go build -trimpath -ldflags "$ldflags" -o "$out/helm" helm.sh/helm/v3/cmd/helm
echo "$stamp" > "$out/.stamp"
"$out/helm" version --short >&2
