package postgres

import (
	"context"

	"github.com/imageservice/imageservice/eventstore"
	"github.com/imageservice/imageservice/projections"
)

// WaitFor blocks until the projection has applied every event up to and
// including pos (its checkpoint is at or past pos), so that a caller can
// read its own writes: pass the last position of an append. It polls the
// checkpoint with a back-off (5 ms up to 250 ms), woken early by appends
// and by batches this ReadModel commits, and returns ctx's error, wrapped,
// when ctx ends first.
func (m *ReadModel) WaitFor(ctx context.Context, pos eventstore.Position) error {
	return projections.WaitForCheckpoint(ctx, m.store, m.key(), &m.advanced, pos)
}
