#!/usr/bin/env bash
# Builds kwok (simulated nodes for the cluster tier and `make run`) from the Go
# module pinned in hack/kwok/go.mod into bin/k8s/. Skips the build when the
# binary was built from the same go.mod/go.sum. Cold: about 1 minute after the
# control plane on 2 cores (kwok builds against its own k8s.io versions).
set -euo pipefail
source "$(dirname "$0")/../pinned.sh"
pinned_init "$(dirname "$0")/../../bin/k8s" "${1:-}"
if pinned_fresh .kwok-stamp kwok; then
  exit 0
fi
echo "building kwok into $out; the first build takes minutes" >&2
rm -f "$out/.kwok-stamp"
cd "$here"
go build -trimpath -o "$out/kwok" sigs.k8s.io/kwok/cmd/kwok
echo "$stamp" > "$out/.kwok-stamp"
