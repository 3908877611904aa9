package tracingtest

import (
	"net"
	"testing"
)

// ClosedURL returns an http:// base URL on loopback where nothing listens
// (its port was just released): requests to it fail at once, as they do
// to a collector, or any server, that is down.
func ClosedURL(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}
