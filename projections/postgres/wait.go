package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/imageservice/imageservice/eventstore"
)

// WaitFor blocks until the projection has applied every event up to and
// including pos (its checkpoint is at or past pos), so that a caller can
// read its own writes: pass the last position of an append. It polls the
// checkpoint with a back-off (5 ms up to 250 ms), woken early by appends
// and by batches this ReadModel commits, and returns ctx's error, wrapped,
// when ctx ends first.
func (m *ReadModel) WaitFor(ctx context.Context, pos eventstore.Position) error {
	delay := 5 * time.Millisecond
	for {
		advanced, changed := m.advanced.C(), m.store.Changed()
		cp, err := m.store.Checkpoint(ctx, m.key())
		if err != nil {
			return fmt.Errorf("wait for projection %s to reach %s: %w", m.name, pos, err)
		}
		if !cp.Less(pos) {
			return nil
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("wait for projection %s to reach %s (at %s): %w", m.name, pos, cp, ctx.Err())
		case <-advanced:
		case <-changed:
		case <-t.C:
		}
		t.Stop()
		delay = min(delay*2, 250*time.Millisecond)
	}
}
