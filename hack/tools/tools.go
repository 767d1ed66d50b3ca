//go:build tools

// Package tools records the main packages `make helm` builds, so that
// `go mod tidy` keeps their dependencies.
package tools

import (
	_ "helm.sh/helm/v3/cmd/helm"
)
