package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"

	"github.com/google/uuid"

	"github.com/imageservice/imageservice/eventstore"
	"github.com/imageservice/imageservice/images"
	"github.com/imageservice/imageservice/projections"
)

// Projector returns the subscription that keeps the read model up to date:
// run it with an eventstore.Runner on the read model's store. It saves its
// checkpoint itself, in the transaction of each batch's writes.
func (m *ReadModel) Projector() eventstore.Subscription {
	return eventstore.Subscription{
		Name:                   m.name,
		Partitions:             1,
		Handler:                m.handle,
		HandlerSavesCheckpoint: true,
	}
}

// Run runs the projector with the runner until ctx ends. A runner without
// a Store runs on the read model's event store.
func (m *ReadModel) Run(ctx context.Context, runner *eventstore.Runner) error {
	if runner.Store == nil {
		r := *runner
		r.Store = m.store
		runner = &r
	}
	return runner.Run(ctx, m.Projector())
}

// WaitFor blocks until the projection has applied every event up to and
// including pos (its checkpoint is at or past pos), so that a caller can
// read its own writes: pass the last position of an append. It is woken
// by appends and by batches this ReadModel commits, polls as well, and
// returns ctx's error, wrapped, when ctx ends first.
func (m *ReadModel) WaitFor(ctx context.Context, pos eventstore.Position) error {
	return projections.WaitForCheckpoint(ctx, m.store, m.key(), &m.advanced, pos)
}

// handle applies one batch and its checkpoint in one write transaction.
// The fenced checkpoint is written first, so that a projector that lost
// its lease fails before writing anything.
func (m *ReadModel) handle(ctx context.Context, b eventstore.Batch) error {
	err := m.store.InTx(ctx, func(tx *sql.Tx) error {
		if err := m.store.SaveCheckpointTx(ctx, tx, b.Checkpoint); err != nil {
			return err
		}
		return m.apply(ctx, tx, b.Events)
	})
	if err != nil {
		return fmt.Errorf("project %d events up to %s: %w", len(b.Events), b.Checkpoint.Position, err)
	}
	m.advanced.Notify()
	return nil
}

// apply folds events into the images' stored states and writes the rows,
// in tx.
func (m *ReadModel) apply(ctx context.Context, tx *sql.Tx, events []eventstore.Event) error {
	w := &txWriter{tx: tx}
	defer w.close()
	_, err := projections.ApplyBatch(ctx, m.log, w, events)
	return err
}

// txWriter is the projections.StateStore of one write transaction. It
// prepares its upserts once per transaction, which a rebuild reuses for
// every batch.
type txWriter struct {
	tx                        *sql.Tx
	upsertImage, upsertDither *sql.Stmt
}

// close releases the prepared statements.
func (w *txWriter) close() {
	for _, s := range []*sql.Stmt{w.upsertImage, w.upsertDither} {
		if s != nil {
			_ = s.Close()
		}
	}
}

// prepared returns *s, preparing q into it first if needed.
func (w *txWriter) prepared(ctx context.Context, s **sql.Stmt, q string) (*sql.Stmt, error) {
	if *s == nil {
		stmt, err := w.tx.PrepareContext(ctx, q)
		if err != nil {
			return nil, fmt.Errorf("prepare upsert: %w", err)
		}
		*s = stmt
	}
	return *s, nil
}

// LoadStates implements projections.StateStore with one query.
func (w *txWriter) LoadStates(ctx context.Context, ids []uuid.UUID) (map[uuid.UUID]images.Image, error) {
	list, err := idList(ids)
	if err != nil {
		return nil, err
	}
	rows, err := w.tx.QueryContext(ctx, `SELECT id, state FROM image_view
WHERE id IN (SELECT value FROM json_each(?))`, list)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	states := make(map[uuid.UUID]images.Image, len(ids))
	for rows.Next() {
		var id uuid.UUID
		var raw string
		if err := rows.Scan(&id, &raw); err != nil {
			return nil, err
		}
		var s images.Image
		if err := json.Unmarshal([]byte(raw), &s); err != nil {
			return nil, fmt.Errorf("decode state of image %s: %w", id, err)
		}
		states[id] = s
	}
	return states, rows.Err()
}

// WriteImage implements projections.StateStore: it upserts the image's
// row and the rows of its dithers that changed since old.
func (w *txWriter) WriteImage(ctx context.Context, old, s images.Image) error {
	if err := w.writeImage(ctx, s); err != nil {
		return err
	}
	for _, d := range projections.ChangedDithers(old, s) {
		if err := w.writeDither(ctx, d); err != nil {
			return err
		}
	}
	return nil
}

// writeImage upserts an image's row and state.
func (w *txWriter) writeImage(ctx context.Context, s images.Image) error {
	state, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("encode state: %w", err)
	}
	stmt, err := w.prepared(ctx, &w.upsertImage, upsertImageSQL)
	if err != nil {
		return err
	}
	v := projections.ImageFromState(s)
	_, err = stmt.ExecContext(ctx, v.ID, v.Filename, v.ContentType, v.ByteSize, v.Width, v.Height,
		v.SHA256, v.Owner, string(v.Status), v.URL, v.Version, micros(v.CreatedAt), micros(v.UpdatedAt),
		optionalMicros(v.DeletedAt), v.DitherCount, string(state))
	if err != nil {
		return fmt.Errorf("upsert image row: %w", err)
	}
	return nil
}

// writeDither upserts one dither's row.
func (w *txWriter) writeDither(ctx context.Context, d projections.Dither) error {
	opts, err := json.Marshal(d.Options)
	if err != nil {
		return fmt.Errorf("encode options of dither %s: %w", d.ID, err)
	}
	stmt, err := w.prepared(ctx, &w.upsertDither, upsertDitherSQL)
	if err != nil {
		return err
	}
	_, err = stmt.ExecContext(ctx, d.ID, d.ImageID, d.Seq, string(opts), string(d.Status), d.ResultKey,
		d.ByteSize, d.Width, d.Height, d.Colours, d.Error, d.DurationMs, micros(d.RequestedAt),
		optionalMicros(d.CompletedAt), d.URL)
	if err != nil {
		return fmt.Errorf("upsert row of dither %s: %w", d.ID, err)
	}
	return nil
}

const upsertImageSQL = `INSERT INTO image_view (id, filename, content_type, byte_size, width, height,
    sha256, owner, status, url, version, created_at, updated_at, deleted_at, dither_count, state)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (id) DO UPDATE SET filename = excluded.filename, content_type = excluded.content_type,
    byte_size = excluded.byte_size, width = excluded.width, height = excluded.height,
    sha256 = excluded.sha256, owner = excluded.owner, status = excluded.status, url = excluded.url,
    version = excluded.version, created_at = excluded.created_at, updated_at = excluded.updated_at,
    deleted_at = excluded.deleted_at, dither_count = excluded.dither_count, state = excluded.state`

const upsertDitherSQL = `INSERT INTO dither_view (id, image_id, seq, options, status, result_key,
    byte_size, width, height, colours, error, duration_ms, requested_at, completed_at, url)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (id) DO UPDATE SET image_id = excluded.image_id, seq = excluded.seq,
    options = excluded.options, status = excluded.status, result_key = excluded.result_key,
    byte_size = excluded.byte_size, width = excluded.width, height = excluded.height,
    colours = excluded.colours, error = excluded.error, duration_ms = excluded.duration_ms,
    requested_at = excluded.requested_at, completed_at = excluded.completed_at, url = excluded.url`
