#!/usr/bin/env bash
# Runs every benchmark of the project and rewrites BENCHMARKS.md.
#   1. Go benchmarks of the admission path: handler vs floor
#   2. HTTPS throughput/latency of the server: ours vs a no-op handler
#   3. latency added to CREATEs through a real kube-apiserver: no webhook, no-ops,
#      constant copies of our answer and ours, interleaved CREATE by CREATE;
#      policy admission beside a MutatingAdmissionPolicy anchor
#   4. memory of the shipped `serve` binary
#   5. election failover times, from the elector's integration suite
#   6. coexistence and unavailability under faults, from the cluster tier
# Ratios compare measurements of the same run. Needs bin/k8s and
# bin/singleton-webhook (`make bench` builds both).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
export KUBEBUILDER_ASSETS=${KUBEBUILDER_ASSETS:-$root/bin/k8s}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
export BENCH_OUT=$out
count=${BENCH_COUNT:-8}

gobench_cmd="go test -run '^\$' -bench BenchmarkAdmission -benchmem -count $count ./webhook/"
echo "+ $gobench_cmd" >&2
eval "$gobench_cmd" | tee "$out/gobench.txt" >&2
# Median ns/op, B/op and allocs/op of each benchmark, and handler/floor ratios.
awk -v count="$count" '
  /^BenchmarkAdmission\// {
    name = $1; sub(/-[0-9]+$/, "", name); sub(/^BenchmarkAdmission\//, "", name)
    for (i = 2; i <= NF; i++) {
      if ($(i+1) == "ns/op") ns[name] = ns[name] " " $i
      if ($(i+1) == "B/op") by[name] = by[name] " " $i
      if ($(i+1) == "allocs/op") al[name] = al[name] " " $i
    }
    names[name] = 1
  }
  function med(s,   a, n, i, j, t) {
    n = split(s, a, " ")
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
    return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
  }
  END {
    print "## 1. Admission path in-process (Go benchmarks)"
    print ""
    print "The whole HTTP handler (`webhook.HTTPHandler`: read body, decode the AdmissionReview, handle, encode the answer) on a realistic (3 containers, ~6 KB) and a large (~200 KB) singleton Deployment. The floor is the same HTTP handler with an admission handler that allows without looking at the object: decoding the review and encoding an allowed response. Median of " count " runs."
    print ""
    print "| object | floor ns/op | handler ns/op | handler / floor | floor B/op | handler B/op | floor allocs | handler allocs |"
    print "|---|---|---|---|---|---|---|---|"
    split("realistic large", sizes, " ")
    for (k = 1; k <= 2; k++) {
      s = sizes[k]; f = s "/floor"; h = s "/handler"
      printf "| %s | %.0f | %.0f | **%.2f×** | %.0f | %.0f | %.0f | %.0f |\n", s, med(ns[f]), med(ns[h]), med(ns[h]) / med(ns[f]), med(by[f]), med(by[h]), med(al[f]), med(al[h])
    }
    print ""
    print "Not a target: what decides is the latency added end to end (figure 3). The handler decodes the typed Deployment and diffs it, as controller-runtime and every injector do."
  }' "$out/gobench.txt" > "$out/1-gobench.md"

bench_cmd="go test -tags bench -count=1 -timeout 30m -run 'TestHTTPSThroughput|TestAPIServerLatency|TestServeMemory' ./test/bench/"
echo "+ $bench_cmd" >&2
eval "$bench_cmd" >&2

failover_cmd="go test -tags integration -count=1 -timeout 15m -v -run 'SIGTERM|SIGKILL|Fifty|Partition|ProductionDefaults' ./elector/"
echo "+ $failover_cmd" >&2
{
  echo "## 5. Election failover"
  echo ""
  echo "From the elector's integration suite against the real API server: real \`singleton-webhook elect\` processes, short timings (lease 2 s, renew 1.5 s, retry 0.3 s) unless the line says otherwise; leadership signals (HTTP, file) sampled every 20 ms."
  echo ""
  echo '```'
  eval "$failover_cmd" 2>&1 | grep -E 'FAILOVER|failover|more than one leader|step|took over|^(--- |ok|FAIL)' | sed -E 's/^ +//; s/^[a-z_]+_test\.go:[0-9]+: //' || echo "the suite printed no timings: see its output"
  echo '```'
} > "$out/5-failover.md"

chaos_cmd="go test -tags integration -count=1 -timeout 15m -v -run 'TestChaosNeverTwoLeaders' ./elector/ -args -chaos-rounds=100 -chaos-groups=4"
echo "+ $chaos_cmd" >&2
{
  echo "## 7. Election under random faults"
  echo ""
  echo "The elector's chaos suite: three \`elect\` candidates per Lease, each reaching the API server through its own TCP proxy, at the tightest timings the validation accepts (lease 2 s, renew deadline 1.71 s, retry 590 ms). Each round hits the leader with a random fault: SIGTERM; SIGKILL; SIGSTOP for longer than the lease, then SIGCONT; or a cut of its proxy, then a heal. Four groups run their rounds at once, on separate Leases. Every candidate's \`GET /leader\` and leader file (valid until its \`validUntil\`) are read every 10 ms; an overlap is a candidate claiming an older epoch after another claimed a newer one. *Takeover*: from the fault to another candidate's valid leader file."
  echo ""
  echo '```'
  eval "$chaos_cmd" 2>&1 | grep -E 'CHAOS|overlaps|^(--- |ok|FAIL)' | sed -E 's/^ +//; s/^[a-z_]+_test\.go:[0-9]+: //' || echo "the suite printed no results: see its output"
  echo '```'
} > "$out/7-chaos.md"

cluster_cmd="go test -tags integration -count=1 -timeout 20m -run 'TestFaults' ./test/cluster/"
echo "+ $cluster_cmd" >&2
CLUSTER_REPORT="$out/cluster.md" eval "$cluster_cmd" >&2
{
  echo "## 6. One instance under faults, on real controllers"
  echo ""
  echo "The cluster tier (test/cluster): real kube-apiserver, kube-controller-manager (Deployment, ReplicaSet, StatefulSet, node-lifecycle, pod-GC controllers) and kube-scheduler; nodes simulated by kwok, which keeps a deleted Pod Terminating for its grace period as a kubelet does. Each workload runs one Pod with terminationGracePeriodSeconds 10; each fault hits that Pod. From a Pod watch: *two Pods running* integrates the time during which two Pods of the workload were bound to a node and not terminal or gone (a Terminating Pod still runs); *none serving*, the time with no Pod Ready and not Terminating. Node loss: heartbeats stop, the node is NotReady after 10 s, its Pods are evicted 2 s later (short tolerations), and 5 s after that an administrator force-deletes the old Pod; the last column then counts from the force delete. *The app exits 1 s after SIGTERM*: the test tells the node the Pod's containers stopped 1 s after the delete, as a kubelet reports an app that shuts down fast. The Deployment of one replica with Recreate is what replicas mode was without its scheduling gate."
  echo ""
  cat "$out/cluster.md"
} > "$out/6-cluster.md"

{
  echo "# Benchmarks"
  echo ""
  echo "Written by \`make bench\` (hack/bench.sh) on $(date -u +%Y-%m-%d). Machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(go version | cut -d' ' -f3-4), shared and noisy: compare the ratios (measured in the same run), not absolute numbers across runs."
  echo ""
  echo "Commands:"
  echo ""
  echo '```'
  echo "make bench"
  echo "$gobench_cmd"
  echo "BENCH_OUT=<dir> KUBEBUILDER_ASSETS=bin/k8s $bench_cmd"
  echo "KUBEBUILDER_ASSETS=bin/k8s $failover_cmd"
  echo "CLUSTER_REPORT=<file> KUBEBUILDER_ASSETS=bin/k8s $cluster_cmd"
  echo "KUBEBUILDER_ASSETS=bin/k8s $chaos_cmd"
  echo '```'
  for f in "$out"/[0-9]-*.md; do
    echo ""
    cat "$f"
  done
  if [[ -f BENCHMARKS.notes.md ]]; then
    echo ""
    cat BENCHMARKS.notes.md
  fi
} > BENCHMARKS.md
echo "wrote BENCHMARKS.md" >&2
