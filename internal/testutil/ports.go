package testutil

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"testing"
)

// Listening ports for tests are picked below Linux's ephemeral range
// (32768–60999 by default), from which the kernel takes the local port of
// every outgoing connection: a port picked there and released until the
// server binds it can meanwhile become the source port of some client's
// connection to the API server, and the server then fails with "address
// already in use". Below that range only another listener can take it.
const (
	portLow  = 20000
	portHigh = 32000
)

// PickPort returns a port free on every interface at the time of the call,
// below the ephemeral range.
func PickPort() (int, error) {
	for range 200 {
		p := portLow + rand.IntN(portHigh-portLow)
		l, err := net.Listen("tcp", fmt.Sprintf(":%d", p))
		if err != nil {
			continue
		}
		_ = l.Close()
		return p, nil
	}
	return 0, errors.New("find a free port: 200 ports tried, all in use")
}

// FreePort returns a port that was free at the time of the call (PickPort).
func FreePort(t testing.TB) int {
	t.Helper()
	p, err := PickPort()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// FreeAddr returns 127.0.0.1:port for a FreePort.
func FreeAddr(t testing.TB) string {
	t.Helper()
	return fmt.Sprintf("127.0.0.1:%d", FreePort(t))
}
