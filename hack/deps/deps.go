//go:build deps

// Package deps pins modules the test tiers and later features build on, so
// that `go mod tidy` keeps them while no other file imports them yet.
package deps

import (
	_ "github.com/cert-manager/cert-manager/pkg/controller"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "k8s.io/client-go/tools/leaderelection"
	_ "k8s.io/pod-security-admission/policy"
	_ "sigs.k8s.io/controller-runtime/pkg/envtest"
	_ "sigs.k8s.io/yaml"
)
