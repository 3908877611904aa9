package testnet_test

import (
	"net"
	"testing"
	"time"

	"github.com/imageservice/imageservice/internal/testnet"
)

func TestFreeAddrIsFreeAndListenable(t *testing.T) {
	addr := testnet.FreeAddr(t)
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Fatalf("something answers at %s", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen on %s: %v", addr, err)
	}
	ln.Close()
}
