// Package patches holds the pure mutation logic of singleton-webhook: it reads
// the singleton annotations of an apps/v1 Deployment, validates them, and
// rewrites the Deployment so that only one instance of the application is
// active at a time.
//
// Everything here is a function of its inputs: no I/O, no logging, no clients
// and no JSON patches. The admission webhook, the offline `mutate` and
// `review` commands and the drift controller all call Apply, so the cluster
// and the CLI can never disagree about what a Deployment becomes. An UPDATE
// is also checked against the stored object (CheckUpdate: a Lease-name
// change of a live election), and `singleton-webhook release` lets go of a
// singleton with Release, whose result Apply leaves as it is.
//
// What Apply writes is a fixed point of the next and the previous version
// of the webhook (skew.go): an upgrade rolls no Deployment.
package patches
