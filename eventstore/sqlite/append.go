package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/imageservice/imageservice/eventstore"
)

// chunk is the most events written or looked up by one statement, well
// within SQLite's limit on bound parameters.
const chunk = 500

// row is one event as it is stored.
type row struct {
	id     []byte
	typ    string
	schema int
	data   string
	meta   string
}

// batch is a validated append.
type batch struct {
	stream   string
	expected eventstore.ExpectedVersion
	rows     []row
}

// Append implements eventstore.Store in one write transaction.
func (s *Store) Append(ctx context.Context, stream string, expected eventstore.ExpectedVersion, events ...eventstore.NewEvent) (_ eventstore.AppendResult, err error) {
	defer s.observed(time.Now(), len(events), &err)
	b, err := newBatch(stream, expected, events)
	if err != nil {
		return eventstore.AppendResult{}, err
	}
	var res eventstore.AppendResult
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		res, err = appendBatch(ctx, s.wrap(tx), b)
		return err
	})
	if err != nil {
		return eventstore.AppendResult{}, wrapAppend(stream, err)
	}
	if !res.Duplicate {
		s.changed.Notify()
	}
	return res, nil
}

// AppendTx appends within a write transaction of InTx, so that events
// commit together with other writes; InTx wakes readers once it commits.
// A version error or ErrDuplicateEventID leaves the transaction as it was;
// after any other error it may hold part of the append, so return the
// error and let InTx roll back.
func (s *Store) AppendTx(ctx context.Context, tx *sql.Tx, stream string, expected eventstore.ExpectedVersion, events ...eventstore.NewEvent) (_ eventstore.AppendResult, err error) {
	defer s.observed(time.Now(), len(events), &err)
	b, err := newBatch(stream, expected, events)
	if err != nil {
		return eventstore.AppendResult{}, err
	}
	res, err := appendBatch(ctx, s.wrap(tx), b)
	if err != nil {
		return eventstore.AppendResult{}, wrapAppend(stream, err)
	}
	return res, nil
}

// wrapAppend adds the stream to an error, leaving a *VersionError, which
// names it already, as it is.
func wrapAppend(stream string, err error) error {
	if _, ok := errors.AsType[*eventstore.VersionError](err); ok {
		return err
	}
	return fmt.Errorf("append to %s: %w", stream, err)
}

// newBatch validates the events and encodes them as they are stored.
func newBatch(stream string, expected eventstore.ExpectedVersion, events []eventstore.NewEvent) (batch, error) {
	if err := eventstore.Validate(stream, expected, events); err != nil {
		return batch{}, err
	}
	b := batch{stream: stream, expected: expected, rows: make([]row, len(events))}
	for i, e := range events {
		m, err := json.Marshal(e.Metadata)
		if err != nil {
			return batch{}, fmt.Errorf("append to %s: metadata: %w", stream, err)
		}
		if len(e.Data)+len(m) > eventstore.MaxEventSize {
			return batch{}, fmt.Errorf("%w: event %d of %s is over %d bytes", eventstore.ErrInvalidEvent, i, stream, eventstore.MaxEventSize)
		}
		var data bytes.Buffer
		if err := json.Compact(&data, e.Data); err != nil { // valid: Validate checked it
			return batch{}, fmt.Errorf("append to %s: data: %w", stream, err)
		}
		b.rows[i] = row{id: e.ID[:], typ: e.Type, schema: max(e.SchemaVersion, 1), data: data.String(), meta: string(m)}
	}
	return b, nil
}

// appendBatch writes the batch in tx: a retry of an earlier append is
// reported as a duplicate, then the expected version is checked.
func appendBatch(ctx context.Context, tx writeTx, b batch) (eventstore.AppendResult, error) {
	res, recorded, err := findRecorded(ctx, tx, b)
	if err != nil || recorded {
		return res, err
	}
	actual, err := streamVersion(ctx, tx, b.stream)
	if err != nil {
		return res, err
	}
	if !versionMatches(b.expected, actual) {
		return res, &eventstore.VersionError{Stream: b.stream, Expected: b.expected, Actual: actual}
	}
	res.Positions, err = insertEvents(ctx, tx, b, actual)
	if err != nil {
		return res, err
	}
	res.StreamVersion = actual + int64(len(b.rows))
	if _, err := tx.exec(ctx, upsertStreamSQL, b.stream, res.StreamVersion); err != nil {
		return res, fmt.Errorf("update stream version: %w", err)
	}
	return res, nil
}

func versionMatches(expected eventstore.ExpectedVersion, actual int64) bool {
	return expected == eventstore.Any || int64(expected) == actual
}

const (
	streamVersionSQL = `SELECT version FROM streams WHERE stream_id = ?`
	upsertStreamSQL  = `INSERT INTO streams (stream_id, version) VALUES (?, ?)
ON CONFLICT (stream_id) DO UPDATE SET version = excluded.version`
)

func streamVersion(ctx context.Context, tx writeTx, stream string) (int64, error) {
	var v int64
	err := tx.queryRow(ctx, streamVersionSQL, stream).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read stream version: %w", err)
	}
	return v, nil
}

// insertEvents writes the batch's events after version, returning their
// positions in order.
func insertEvents(ctx context.Context, tx writeTx, b batch, version int64) ([]eventstore.Position, error) {
	now := time.Now().UnixNano()
	positions := make([]eventstore.Position, 0, len(b.rows))
	for start := 0; start < len(b.rows); start += chunk {
		rows := b.rows[start:min(start+chunk, len(b.rows))]
		args := make([]any, 0, 8*len(rows))
		for i, r := range rows {
			v := version + int64(start+i) + 1
			args = append(args, b.stream, v, r.id, r.typ, r.schema, r.data, r.meta, now)
		}
		got, err := insertChunk(ctx, tx, len(rows), args)
		if err != nil {
			return nil, err
		}
		positions = append(positions, got...)
	}
	return positions, nil
}

// insertChunk runs one multi-row INSERT of n events.
// insertSQL is the INSERT of n events.
func insertSQL(n int) string {
	return `INSERT INTO events (stream_id, stream_version, event_id, event_type, schema_version, data, metadata, recorded_at)
VALUES ` + strings.Repeat("(?, ?, ?, ?, ?, ?, ?, ?), ", n-1) + `(?, ?, ?, ?, ?, ?, ?, ?)
RETURNING stream_version, global_position`
}

func insertChunk(ctx context.Context, tx writeTx, n int, args []any) ([]eventstore.Position, error) {
	rows, err := tx.query(ctx, insertSQL(n), args...)
	if err != nil {
		return nil, fmt.Errorf("insert events: %w", err)
	}
	defer rows.Close()
	type written struct{ version, global int64 }
	out := make([]written, 0, n)
	for rows.Next() {
		var w written
		if err := rows.Scan(&w.version, &w.global); err != nil {
			return nil, fmt.Errorf("insert events: %w", err)
		}
		out = append(out, w)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("insert events: %w", err)
	}
	// RETURNING gives no order guarantee; the versions give the order.
	slices.SortFunc(out, func(a, b written) int { return int(a.version - b.version) })
	positions := make([]eventstore.Position, len(out))
	for i, w := range out {
		positions[i] = eventstore.Position{Global: w.global}
	}
	return positions, nil
}

// recordedEvent is an already recorded event that an append names.
type recordedEvent struct {
	row
	stream  string
	version int64
	global  int64
}

// findRecorded looks the batch's ids up. When none is recorded it returns
// recorded = false. When all are, with the same content and in the same
// order, the append is a retry: it returns the original result with
// Duplicate set. Anything else is ErrDuplicateEventID.
func findRecorded(ctx context.Context, tx writeTx, b batch) (eventstore.AppendResult, bool, error) {
	found, err := lookupIDs(ctx, tx, b.rows)
	if err != nil || len(found) == 0 {
		return eventstore.AppendResult{}, false, err
	}
	res := eventstore.AppendResult{Duplicate: true, Positions: make([]eventstore.Position, len(b.rows))}
	var base int64 // the version before the batch's first event, as recorded
	for i, r := range b.rows {
		rec, ok := found[string(r.id)]
		if i == 0 && ok {
			base = rec.version - 1
		}
		if !ok || !sameEvent(rec, b.stream, base+int64(i)+1, r) {
			return eventstore.AppendResult{}, true, fmt.Errorf("%w: event %d (%s)", eventstore.ErrDuplicateEventID, i, idString(r.id))
		}
		res.Positions[i] = eventstore.Position{Global: rec.global}
		res.StreamVersion = rec.version
	}
	return res, true, nil
}

// sameEvent reports whether rec is r as recorded in stream at version by
// an earlier append: the same type, schema version, metadata and data
// (equal as JSON, however spelled).
func sameEvent(rec recordedEvent, stream string, version int64, r row) bool {
	return rec.stream == stream && rec.version == version && rec.typ == r.typ && rec.schema == r.schema &&
		rec.meta == r.meta && jsonEqual([]byte(rec.data), []byte(r.data))
}

// lookupIDs returns the recorded events with the rows' ids, by id.
func lookupIDs(ctx context.Context, tx writeTx, rows []row) (map[string]recordedEvent, error) {
	found := map[string]recordedEvent{}
	for start := 0; start < len(rows); start += chunk {
		part := rows[start:min(start+chunk, len(rows))]
		args := make([]any, len(part))
		for i, r := range part {
			args[i] = r.id
		}
		if err := lookupChunk(ctx, tx, args, found); err != nil {
			return nil, fmt.Errorf("look up event ids: %w", err)
		}
	}
	return found, nil
}

// lookupSQL is the SELECT of n events by id.
func lookupSQL(n int) string {
	return `SELECT event_id, stream_id, stream_version, event_type, schema_version,
data, metadata, global_position FROM events WHERE event_id IN (?` + strings.Repeat(", ?", n-1) + `)`
}

func lookupChunk(ctx context.Context, tx writeTx, ids []any, found map[string]recordedEvent) error {
	rows, err := tx.query(ctx, lookupSQL(len(ids)), ids...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var e recordedEvent
		if err := rows.Scan(&e.id, &e.stream, &e.version, &e.typ, &e.schema, &e.data, &e.meta, &e.global); err != nil {
			return err
		}
		found[string(e.id)] = e
	}
	return rows.Err()
}

// idString formats a stored event id for messages.
func idString(id []byte) string {
	u, err := uuid.FromBytes(id)
	if err != nil {
		return fmt.Sprintf("%x", id)
	}
	return u.String()
}

// observed tells Options.ObserveAppend of an append that began at start.
func (s *Store) observed(start time.Time, events int, err *error) {
	if s.observe != nil {
		s.observe(events, time.Since(start), *err)
	}
}
