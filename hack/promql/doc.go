// Package promql checks the chart's alerts and dashboard with Prometheus's
// own rule loader and PromQL parser, in a module of its own: the parser
// pulls in newer prometheus/common and client_golang than the product
// pins, and nothing of it belongs in the binary. `make chart-lint` (part of `make test`) runs it.
package promql
