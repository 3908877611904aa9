package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/imageservice/imageservice/eventstore"
)

// metadataFields are the JSON names of eventstore.Metadata's fields, in
// order; a test checks them against the struct. The metadata is read as
// one column per field, extracted by SQLite, rather than decoded in Go.
var metadataFields = []string{"correlation_id", "causation_id", "actor", "idempotency_key", "trace_parent"}

// eventColumns are the columns that scanEvents reads.
var eventColumns = `global_position, stream_id, stream_version, event_id, event_type,
schema_version, data, recorded_at` + metadataColumns()

func metadataColumns() string {
	var cols strings.Builder
	for _, f := range metadataFields {
		fmt.Fprintf(&cols, ",\ncoalesce(metadata ->> '$.%s', '')", f)
	}
	return cols.String()
}

// ReadStream implements eventstore.Store.
func (s *Store) ReadStream(ctx context.Context, stream string, after int64, limit int) ([]eventstore.Event, error) {
	events, err := s.query(ctx, limit, `SELECT `+eventColumns+` FROM events
WHERE stream_id = ? AND stream_version > ? ORDER BY stream_version LIMIT ?`, stream, after, limit)
	if err != nil {
		return nil, fmt.Errorf("read stream %s: %w", stream, err)
	}
	return events, nil
}

// ReadAll implements eventstore.Store. Positions commit in order (see the
// package documentation), so every committed event is readable and the
// global position alone orders them.
func (s *Store) ReadAll(ctx context.Context, after eventstore.Position, limit int) ([]eventstore.Event, error) {
	if after.TransactionID != 0 {
		return nil, fmt.Errorf("read all after %s: %w", after, ErrForeignPosition)
	}
	events, err := s.query(ctx, limit, `SELECT `+eventColumns+` FROM events
WHERE global_position > ? ORDER BY global_position LIMIT ?`, after.Global, limit)
	if err != nil {
		return nil, fmt.Errorf("read all after %s: %w", after, err)
	}
	return events, nil
}

// Head implements eventstore.Store.
func (s *Store) Head(ctx context.Context) (eventstore.Position, time.Time, error) {
	var pos eventstore.Position
	var at int64
	err := s.readers.QueryRowContext(ctx, `SELECT global_position, recorded_at FROM events
ORDER BY global_position DESC LIMIT 1`).Scan(&pos.Global, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return eventstore.Position{}, time.Time{}, nil
	}
	if err != nil {
		return eventstore.Position{}, time.Time{}, fmt.Errorf("read head: %w", err)
	}
	return pos, fromNanos(at), nil
}

// query runs a query of eventColumns on the read pool.
func (s *Store) query(ctx context.Context, limit int, q string, args ...any) ([]eventstore.Event, error) {
	if limit <= 0 {
		return nil, nil
	}
	rows, err := s.readers.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	return scanEvents(rows, limit)
}

func scanEvents(rows *sql.Rows, limit int) ([]eventstore.Event, error) {
	defer rows.Close()
	events := make([]eventstore.Event, 0, min(limit, 1024))
	for rows.Next() {
		e, err := scanEvent(rows)
		if err != nil {
			return nil, err
		}
		events = append(events, e)
	}
	return events, rows.Err()
}

func scanEvent(rows *sql.Rows) (eventstore.Event, error) {
	var e eventstore.Event
	var id []byte
	var data string
	var at int64
	m := &e.Metadata
	if err := rows.Scan(&e.Position.Global, &e.StreamID, &e.StreamVersion, &id, &e.Type,
		&e.SchemaVersion, &data, &at,
		&m.CorrelationID, &m.CausationID, &m.Actor, &m.IdempotencyKey, &m.TraceParent); err != nil {
		return e, err
	}
	var err error
	if e.ID, err = uuid.FromBytes(id); err != nil {
		return e, fmt.Errorf("event at %d: id: %w", e.Position.Global, err)
	}
	e.Data = []byte(data)
	e.RecordedAt = fromNanos(at)
	return e, nil
}

// fromNanos turns stored unix nanoseconds into a UTC time.
func fromNanos(n int64) time.Time { return time.Unix(0, n).UTC() }
