// Package controllers holds the reconcilers `singleton-webhook serve` runs
// next to the admission server: the drift controller that re-pins singleton
// Deployments changed while the webhook was not there to mutate them, and
// the election-mode controllers (elector RBAC, leader Service).
package controllers
