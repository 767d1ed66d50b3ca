// Package sidecar is the contract between the webhook, which injects the
// leader-election sidecar into election-mode Deployments, and the sidecar
// itself (`singleton-webhook elect`): the names and places both sides must
// agree on, the election timings and the one rule they follow, and the
// conversion of a Config to the sidecar's arguments and back (Args,
// BindFlags), so what the webhook injects is what elect parses.
//
// It imports no other package of the product; patches, elector and the
// commands import it.
package sidecar
