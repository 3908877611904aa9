// Package testnet gives tests loopback addresses that nothing listens on.
package testnet

import (
	"net"
	"strconv"
	"testing"
)

// FreePort returns a loopback TCP port that was free a moment ago: nothing
// listens on it, so a request to it fails at once, as to a server that is
// down. Another process may take it before the test listens on it.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// FreeAddr is FreePort as an address, "127.0.0.1:<port>".
func FreeAddr(t testing.TB) string {
	t.Helper()
	return "127.0.0.1:" + strconv.Itoa(FreePort(t))
}
