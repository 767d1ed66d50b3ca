//go:build integration

package elector_test

import (
	"net/url"
	"testing"

	"github.com/singleton-webhook/singleton-webhook/internal/testutil"
)

// newProxy starts a proxy to the suite's API server (testutil.Proxy).
func newProxy(t *testing.T) *testutil.Proxy {
	t.Helper()
	u, err := url.Parse(cluster.cfg.Host)
	if err != nil {
		t.Fatal(err)
	}
	return testutil.NewProxy(t, u.Host)
}
