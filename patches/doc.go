// Package patches holds the pure mutation logic of singleton-webhook: it reads
// the singleton annotations of an apps/v1 Deployment, validates them, and
// rewrites the Deployment so that only one instance of the application is
// active at a time.
//
// Everything here is a function of its inputs: no I/O, no logging, no clients
// and no JSON patches. The admission webhook, the offline `mutate` and
// `review` commands and the drift controller all call Apply, so the cluster
// and the CLI can never disagree about what a Deployment becomes.
package patches
