package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/imageservice/imageservice/eventstore"
	"github.com/imageservice/imageservice/projections"
)

// rebuildHolder is the lease holder name of a rebuild.
const rebuildHolder = "rebuild"

// Rebuild replays the whole log into the read model, in ONE write
// transaction on the store's single writer:
//
//  1. It takes the projection's lease over (Store.TakeOverLeaseTx),
//     moving its epoch on, whoever holds it.
//  2. It deletes every row and replays the log into the tables, batch by
//     batch, with the projector's own code.
//  3. It stores the checkpoint at the last position replayed, fenced by
//     the lease, and commits, which also leaves the lease free.
//
// No half-built model is ever served: in WAL mode the read connections
// see the last committed state, so queries keep reading the old, complete
// model until the commit and the new, complete one after it. A failed or
// cancelled rebuild rolls back and leaves the old model and checkpoint as
// they were.
//
// The projector needs no separate pause. While the transaction is open it
// holds the only writer, so a projector in this process (or another
// process on the file) waits at its next write, and no lease or
// checkpoint changes hands; renewing the rebuild's lease is therefore not
// needed either. The moved epoch fences the projector: after the commit
// its batch in flight (read before the rebuild) fails with
// eventstore.ErrLeaseLost and rolls back, and its runner acquires the
// free lease again and resumes from the rebuilt checkpoint. Two rebuilds
// run one after the other.
//
// The log is read through the read connections while the transaction is
// open: the writer being held, no event can commit meanwhile, so they see
// exactly the log up to its head. A long rebuild keeps the WAL growing
// until it commits.
//
// progress, when not nil, is called after every batch with the events
// replayed, the estimated total and the rate in events per second, and
// once after the commit with done == total.
func (m *ReadModel) Rebuild(ctx context.Context, progress func(done, total int64, rate float64)) error {
	if progress == nil {
		progress = func(int64, int64, float64) {}
	}
	start := time.Now()
	rate := func(done int64) float64 { return float64(done) / max(time.Since(start).Seconds(), 1e-9) }
	m.log.Info("projections: rebuild started", "projection", m.name)
	var done int64
	var pos eventstore.Position
	err := m.store.InTx(ctx, func(tx *sql.Tx) error {
		var err error
		pos, done, err = m.rebuildTx(ctx, tx, func(done, total int64) { progress(done, total, rate(done)) })
		return err
	})
	if err != nil {
		return fmt.Errorf("rebuild %s: %w", m.name, err)
	}
	m.advanced.Notify()
	progress(done, done, rate(done))
	m.log.Info("projections: rebuild done", "projection", m.name, "events", done,
		"position", pos.String(), "elapsed", time.Since(start).Round(time.Millisecond))
	return nil
}

// rebuildTx takes the lease over, empties the tables, replays the log and
// stores the checkpoint, in tx. It returns the last position replayed and
// the number of events.
func (m *ReadModel) rebuildTx(ctx context.Context, tx *sql.Tx, progress func(done, total int64)) (eventstore.Position, int64, error) {
	lease, err := m.store.TakeOverLeaseTx(ctx, tx, m.key(), rebuildHolder)
	if err != nil {
		return eventstore.Position{}, 0, err
	}
	for _, table := range []string{"dither_view", "image_view"} {
		if _, err := tx.ExecContext(ctx, "DELETE FROM "+table); err != nil {
			return eventstore.Position{}, 0, fmt.Errorf("empty %s: %w", table, err)
		}
	}
	pos, done, err := m.replay(ctx, tx, progress)
	if err != nil {
		return eventstore.Position{}, 0, err
	}
	cp := eventstore.Checkpoint{Key: lease.Key, Epoch: lease.Epoch, Position: pos}
	if err := m.store.SaveCheckpointTx(ctx, tx, cp); err != nil {
		return eventstore.Position{}, 0, err
	}
	return pos, done, nil
}

// replay applies the whole log to the tables in tx, rebuildBatch events
// at a time.
func (m *ReadModel) replay(ctx context.Context, tx *sql.Tx, progress func(done, total int64)) (eventstore.Position, int64, error) {
	head, _, err := m.store.Head(ctx)
	if err != nil {
		return eventstore.Position{}, 0, fmt.Errorf("read head of the log: %w", err)
	}
	w := &txWriter{tx: tx}
	defer w.close()
	var pos eventstore.Position
	var done int64
	for {
		events, err := m.store.ReadAll(ctx, pos, m.rebuildBatch)
		if err != nil {
			return pos, done, fmt.Errorf("read the log after %s: %w", pos, err)
		}
		if len(events) > 0 {
			if _, err := projections.ApplyBatch(ctx, m.log, w, events); err != nil {
				return pos, done, fmt.Errorf("replay %d events after %s: %w", len(events), pos, err)
			}
			pos, done = events[len(events)-1].Position, done+int64(len(events))
			progress(done, max(head.Global, done))
		}
		if len(events) < m.rebuildBatch {
			return pos, done, nil
		}
	}
}
