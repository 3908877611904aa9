package projections

import (
	"context"
	"fmt"
	"time"

	"github.com/imageservice/imageservice/eventstore"
)

// WaitForCheckpoint blocks until the checkpoint of key in store is at or
// past pos, so that a caller can read its own writes. It polls the
// checkpoint with a back-off (5 ms up to 250 ms), woken early by the
// store's Changed hint and by advanced (notified by a projector after each
// batch it commits; nil for none), and returns ctx's error, wrapped, when
// ctx ends first.
func WaitForCheckpoint(ctx context.Context, store eventstore.Store, key eventstore.CheckpointKey, advanced *eventstore.Signal, pos eventstore.Position) error {
	delay := 5 * time.Millisecond
	for {
		var woken <-chan struct{}
		if advanced != nil {
			woken = advanced.C()
		}
		changed := store.Changed()
		cp, err := store.Checkpoint(ctx, key)
		if err != nil {
			return fmt.Errorf("wait for projection %s to reach %s: %w", key.Subscription, pos, err)
		}
		if !cp.Less(pos) {
			return nil
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("wait for projection %s to reach %s (at %s): %w", key.Subscription, pos, cp, ctx.Err())
		case <-woken:
		case <-changed:
		case <-t.C:
		}
		t.Stop()
		delay = min(delay*2, 250*time.Millisecond)
	}
}
