package bridge_test

import (
	"context"
	"testing"
	"time"

	"github.com/imageservice/imageservice/bridge"
)

// pingWithin pings with a deadline.
func pingWithin(p bridge.Pinger, d time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return p.Ping(ctx)
}

// The NATS sink's ping follows the server: up, down while it is stopped,
// up again once it is back.
func TestNATSPing(t *testing.T) {
	n := startNATS(t)
	s := n.sink(n.url())
	var p bridge.Pinger = s
	if err := pingWithin(p, 10*time.Second); err != nil {
		t.Fatalf("ping with the server up: %v", err)
	}
	n.stop()
	if err := pingWithin(p, 2*time.Second); err == nil {
		t.Fatal("ping with the server stopped succeeded")
	}
	n.start()
	waitFor(t, "the ping to succeed once the server is back", func() (bool, error) {
		err := pingWithin(p, 2*time.Second)
		return err == nil, err
	})
}

// The Kafka sink's ping fails once the broker is gone.
func TestKafkaPing(t *testing.T) {
	k := startKafka(t)
	var p bridge.Pinger = k.sink(t)
	if err := pingWithin(p, 10*time.Second); err != nil {
		t.Fatalf("ping with the broker up: %v", err)
	}
	k.c.Close()
	if err := pingWithin(p, 2*time.Second); err == nil {
		t.Fatal("ping with the broker closed succeeded")
	}
}
