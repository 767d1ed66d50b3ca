// Package bench holds the end-to-end benchmarks behind `make bench`: HTTPS
// throughput and latency of the admission server against a no-op handler on
// the same server, the latency the webhook adds to Deployment CREATEs through
// a real API server, and the memory of `serve`. They are tests with the build
// tag `bench`, never part of `make test`: they assert nothing about speed and
// write their results as Markdown fragments into $BENCH_OUT for
// hack/bench.sh to assemble into BENCHMARKS.md.
package bench
