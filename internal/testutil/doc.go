// Package testutil holds the helpers the test suites share: free loopback
// ports, a buffer safe for concurrent writers, and the product binary built
// once per test process.
package testutil
