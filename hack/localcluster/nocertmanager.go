//go:build !integration

package main

import (
	"context"
	"errors"
)

// errNoCertManager: cert-manager's controllers are compiled in only with the
// integration build tag, which hack/run.sh sets.
var errNoCertManager = errors.New("-for-helm needs cert-manager, compiled in with -tags integration: use `make run ARGS=-for-helm`")

func certManagerCRDs() (string, error) { return "", errNoCertManager }

func startCertManager(context.Context, string) (func() error, error) { return nil, errNoCertManager }
