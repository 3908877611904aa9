package postgres

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/imageservice/imageservice/eventstore"
	"github.com/imageservice/imageservice/images"
	"github.com/imageservice/imageservice/projections"
)

// tables names the pair of tables a projection writes: the live ones, or
// the shadow copies that Rebuild fills.
type tables struct{ images, dithers string }

var (
	liveTables   = tables{images: "image_view", dithers: "dither_view"}
	shadowTables = tables{images: "image_view_next", dithers: "dither_view_next"}
)

// Projector returns the subscription that keeps the read model up to date:
// run it with an eventstore.Runner. It saves its checkpoint itself, in the
// transaction of each batch's writes.
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

// handle applies one batch and its checkpoint in one transaction. The
// fenced checkpoint is written first, so a projector that lost its lease
// fails before writing anything and a takeover waits for it to finish.
func (m *ReadModel) handle(ctx context.Context, b eventstore.Batch) error {
	err := pgx.BeginFunc(ctx, m.pool, func(tx pgx.Tx) error {
		if err := m.store.SaveCheckpointTx(ctx, tx, b.Checkpoint); err != nil {
			return err
		}
		return m.apply(ctx, tx, liveTables, b.Events)
	})
	if err != nil {
		return fmt.Errorf("project %d events up to %s: %w", len(b.Events), b.Checkpoint.Position, err)
	}
	m.advanced.Notify()
	return nil
}

// batchWriter is the projections.StateStore of one transaction: it loads
// states in tx and queues the writes in a pgx.Batch, which apply sends.
type batchWriter struct {
	tx    pgx.Tx
	t     tables
	batch pgx.Batch
}

// apply folds events into the images' stored states and writes the rows.
func (m *ReadModel) apply(ctx context.Context, tx pgx.Tx, t tables, events []eventstore.Event) error {
	w := &batchWriter{tx: tx, t: t}
	n, err := projections.ApplyBatch(ctx, m.log, w, events)
	if err != nil || n == 0 {
		return err
	}
	if err := tx.SendBatch(ctx, &w.batch).Close(); err != nil {
		return fmt.Errorf("write %d images: %w", n, err)
	}
	return nil
}

// LoadStates implements projections.StateStore.
func (w *batchWriter) LoadStates(ctx context.Context, ids []uuid.UUID) (map[uuid.UUID]images.Image, error) {
	return loadStates(ctx, w.tx, w.t, ids)
}

// WriteImage implements projections.StateStore by queueing the upserts.
func (w *batchWriter) WriteImage(_ context.Context, old, s images.Image) error {
	return queueWrites(&w.batch, w.t, old, s)
}

// loadStates returns the stored states of the images, in one query.
func loadStates(ctx context.Context, tx pgx.Tx, t tables, ids []uuid.UUID) (map[uuid.UUID]images.Image, error) {
	rows, err := tx.Query(ctx, fmt.Sprintf(`SELECT id, state FROM %s WHERE id = ANY($1)`, t.images), ids)
	if err != nil {
		return nil, fmt.Errorf("query %s: %w", t.images, err)
	}
	defer rows.Close()
	states := make(map[uuid.UUID]images.Image, len(ids))
	for rows.Next() {
		var id uuid.UUID
		var raw []byte
		if err := rows.Scan(&id, &raw); err != nil {
			return nil, fmt.Errorf("scan %s: %w", t.images, err)
		}
		var s images.Image
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, fmt.Errorf("decode state of image %s: %w", id, err)
		}
		states[id] = s
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("scan %s: %w", t.images, err)
	}
	return states, nil
}

// queueWrites queues the upserts of an image's row and of its dithers that
// changed since old.
func queueWrites(b *pgx.Batch, t tables, old, s images.Image) error {
	state, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("encode state of image %s: %w", s.ID, err)
	}
	v := projections.ImageFromState(s)
	b.Queue(fmt.Sprintf(upsertImageSQL, t.images), v.ID, v.Filename, v.ContentType, v.ByteSize,
		v.Width, v.Height, v.SHA256, v.Owner, string(v.Status), v.URL, v.Version,
		v.CreatedAt, v.UpdatedAt, v.DeletedAt, v.DitherCount, state)
	for _, d := range projections.ChangedDithers(old, s) {
		if err := queueDither(b, t, d); err != nil {
			return err
		}
	}
	return nil
}

// queueDither queues the upsert of one dither's row.
func queueDither(b *pgx.Batch, t tables, d projections.Dither) error {
	opts, err := json.Marshal(d.Options)
	if err != nil {
		return fmt.Errorf("encode options of dither %s: %w", d.ID, err)
	}
	b.Queue(fmt.Sprintf(upsertDitherSQL, t.dithers), d.ID, d.ImageID, d.Seq, opts, string(d.Status),
		d.ResultKey, d.ByteSize, d.Width, d.Height, d.Colours, d.Error, d.DurationMs,
		d.RequestedAt, d.CompletedAt, d.URL)
	return nil
}

const upsertImageSQL = `INSERT INTO %s (id, filename, content_type, byte_size, width, height,
    sha256, owner, status, url, version, created_at, updated_at, deleted_at, dither_count, state)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
ON CONFLICT (id) DO UPDATE SET filename = excluded.filename, content_type = excluded.content_type,
    byte_size = excluded.byte_size, width = excluded.width, height = excluded.height,
    sha256 = excluded.sha256, owner = excluded.owner, status = excluded.status, url = excluded.url,
    version = excluded.version, created_at = excluded.created_at, updated_at = excluded.updated_at,
    deleted_at = excluded.deleted_at, dither_count = excluded.dither_count, state = excluded.state`

const upsertDitherSQL = `INSERT INTO %s (id, image_id, seq, options, status, result_key,
    byte_size, width, height, colours, error, duration_ms, requested_at, completed_at, url)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
ON CONFLICT (id) DO UPDATE SET image_id = excluded.image_id, seq = excluded.seq,
    options = excluded.options, status = excluded.status, result_key = excluded.result_key,
    byte_size = excluded.byte_size, width = excluded.width, height = excluded.height,
    colours = excluded.colours, error = excluded.error, duration_ms = excluded.duration_ms,
    requested_at = excluded.requested_at, completed_at = excluded.completed_at, url = excluded.url`
