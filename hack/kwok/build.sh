#!/usr/bin/env bash
# Builds kwok (simulated nodes for the cluster tier and `make run`) from the Go
# module pinned in hack/kwok/go.mod into bin/k8s/. Skips the build when the
# binary was built from the same go.mod/go.sum. Cold: a few minutes on 2 cores
# (kwok builds against its own k8s.io library versions).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/../../bin/k8s}
mkdir -p "$out"
out=$(cd "$out" && pwd)
stamp=$(cat "$here/go.mod" "$here/go.sum" "$here/build.sh" | sha256sum | cut -d' ' -f1)
if [[ -x $out/kwok && "$(cat "$out/.kwok-stamp" 2>/dev/null)" == "$stamp" ]]; then
  exit 0
fi
echo "building kwok into $out; the first build takes minutes" >&2
rm -f "$out/.kwok-stamp"
cd "$here"
go build -trimpath -o "$out/kwok" sigs.k8s.io/kwok/cmd/kwok
echo "$stamp" > "$out/.kwok-stamp"
