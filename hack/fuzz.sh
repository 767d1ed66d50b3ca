#!/usr/bin/env bash
# Runs every Go fuzz target of the module for the given time each.
# go test -fuzz takes one target of one package per run.
set -euo pipefail
fuzztime=${1:-10s}
cd "$(dirname "$0")/.."
found=0
while read -r pkg dir; do
  for target in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //'); do
    found=1
    echo "fuzz $pkg $target for $fuzztime"
    # Go's fuzzing engine can end a short run with "context deadline
    # exceeded" while it is still minimizing a new interesting input (no
    # failing input, nothing written to testdata/fuzz): that run is
    # repeated once. A real failure writes its input and fails either way.
    log=$(mktemp)
    if ! go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" "$pkg" 2>&1 | tee "$log"; then
      if grep -q '^    context deadline exceeded$' "$log" && ! grep -q 'Failing input written' "$log"; then
        echo "fuzz $pkg $target: the engine timed out while minimizing, no failing input: once more"
        go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" "$pkg"
      else
        rm -f "$log"; exit 1
      fi
    fi
    rm -f "$log"
  done
done < <(go list -f '{{.ImportPath}} {{.Dir}}' ./...)
[[ $found == 1 ]] || echo "no fuzz targets"
