package bridge_test

import (
	"context"
	"testing"
	"time"

	"github.com/imageservice/imageservice/bridge"
	"github.com/imageservice/imageservice/eventstore"
)

// TestCheckpointWhenCaughtUpOnFullBatch: a catch-up whose last batch is
// full (batches of one event are always full), and then no new event: the
// checkpoint still reaches the last event, although the checkpoint
// interval never passes, and every message was published.
func TestCheckpointWhenCaughtUpOnFullBatch(t *testing.T) {
	w := newWorld(t)
	k := startKafka(t)
	w.workload(0, 3)
	b := &bridge.Bridge{Store: w.store, Sink: k.sink(t), Mapper: w.mapper, BatchSize: 1,
		CheckpointInterval: time.Hour, Logger: quietLogger()}
	r := &eventstore.Runner{Store: w.store, LeaseTTL: 3 * time.Second, Logger: quietLogger()}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = b.Run(ctx, r) }()
	t.Cleanup(func() { cancel(); <-done })
	w.waitCaughtUp(b)
	want := w.expected()
	checkKafka(t, k.consume(t, len(want)), want)
}
