package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/imageservice/imageservice/eventstore"
)

const appendSQL = `SELECT stream_version, global_position, transaction_id, duplicate
FROM eventstore_append($1, $2, $3, $4, $5, $6, $7)`

// appendRetries bounds how often Append starts over in a new transaction
// after a race it can resolve by itself.
const appendRetries = 10

// querier is a pool, a connection or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// Append implements eventstore.Store in one round trip. It starts over by
// itself after a race that a new transaction resolves: a stream overtaken
// by a later transaction (the retry waits its turn on the stream, see
// runAppendInTurn), or an identical append committed concurrently (which
// then reports Duplicate).
func (s *Store) Append(ctx context.Context, stream string, expected eventstore.ExpectedVersion, events ...eventstore.NewEvent) (_ eventstore.AppendResult, err error) {
	defer s.observe(time.Now(), len(events), &err)
	args, err := appendArgs(stream, expected, events)
	if err != nil {
		return eventstore.AppendResult{}, err
	}
	if res, ok := fastAppend(ctx, s.pool, args); ok {
		s.committed()
		return res, nil
	}
	var lastErr error
	for attempt := 0; attempt < appendRetries; attempt++ {
		var res eventstore.AppendResult
		var err error
		if errors.Is(lastErr, ErrStreamOvertaken) {
			res, err = s.runAppendInTurn(ctx, args)
		} else {
			res, err = runAppend(ctx, s.pool, args)
		}
		if err == nil {
			if !res.Duplicate {
				s.committed()
			}
			return res, nil
		}
		lastErr = translate(stream, expected, err)
		if !retryable(err, attempt) || ctx.Err() != nil {
			return eventstore.AppendResult{}, lastErr
		}
	}
	return eventstore.AppendResult{}, lastErr
}

// turnLockClass is the first key of the streams' advisory locks (see
// runAppendInTurn); two-key locks never collide with one-key ones, which
// tools such as migration runners take.
const turnLockClass = 0x45564e54 // "EVNT"

// runAppendInTurn runs an append that was overtaken, in a transaction
// that first waits its turn on the stream's advisory lock, before it
// writes and so before it gets its transaction id: the ids of writers of
// the stream that retry this way follow the order of their turns, and
// none of them overtakes another. (Writers on their first try take no
// lock: the race is rare, and the fast path stays one statement.)
func (s *Store) runAppendInTurn(ctx context.Context, args []any) (res eventstore.AppendResult, err error) {
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1::int4, hashtext($2))", turnLockClass, args[0]); err != nil {
			return fmt.Errorf("wait for the stream's turn: %w", err)
		}
		res, err = runAppend(ctx, tx, args)
		return err
	})
	return res, err
}

// The fast path of a standalone append: one statement that moves the
// stream's version (with the expected-version and last_txid guards) and
// inserts the events, without the duplicate check of eventstore_append.
// When it writes nothing (a guard refused) or fails (an event id already
// recorded), the statement changed nothing, and eventstore_append runs
// to find out why: a retry, a conflict or an overtaken stream.
const (
	fastInsertEvents = `INSERT INTO events (stream_id, stream_version, event_id, event_type, schema_version, data, metadata)
SELECT $1, s.version - cardinality($3::uuid[]) + x.ord, x.id, x.typ, x.sv, x.data, x.meta
  FROM s, unnest($3::uuid[], $4::text[], $5::integer[], $6::jsonb[], $7::jsonb[])
       WITH ORDINALITY AS x(id, typ, sv, data, meta, ord)
RETURNING stream_version, global_position, transaction_id::text::bigint, false`
	// fastUpsertSQL serves Any and NoStream: a new stream is inserted.
	fastUpsertSQL = `WITH s AS (
  INSERT INTO streams AS s (stream_id, version, last_txid)
  VALUES ($1, cardinality($3::uuid[]), pg_current_xact_id())
  ON CONFLICT (stream_id) DO UPDATE SET version = s.version + cardinality($3::uuid[]), last_txid = excluded.last_txid
  WHERE $2::bigint = -1 AND s.last_txid <= excluded.last_txid
  RETURNING s.version)
` + fastInsertEvents
	// fastUpdateSQL serves an exact version: the stream must exist.
	fastUpdateSQL = `WITH s AS (
  UPDATE streams s SET version = s.version + cardinality($3::uuid[]), last_txid = pg_current_xact_id()
  WHERE s.stream_id = $1 AND s.version = $2::bigint AND s.last_txid <= pg_current_xact_id()
  RETURNING s.version)
` + fastInsertEvents
)

// fastAppend tries the fast path; ok is false when it wrote nothing.
func fastAppend(ctx context.Context, q querier, args []any) (eventstore.AppendResult, bool) {
	sql := fastUpsertSQL
	if args[1].(int64) > 0 {
		sql = fastUpdateSQL
	}
	res, err := scanAppend(q.Query(ctx, sql, args...))
	return res, err == nil && len(res.Positions) > 0
}

// retryable reports an append error that a new transaction may resolve. A
// version conflict is retried once, because it may be a concurrent
// identical append that the retry reports as a duplicate.
func retryable(err error, attempt int) bool {
	translated := translate("", 0, err)
	switch {
	case errors.Is(translated, ErrStreamOvertaken), isUniqueEventID(err):
		return true
	case errors.Is(translated, eventstore.ErrWrongVersion):
		return attempt == 0
	}
	return false
}

// AppendTx appends within the caller's transaction, so that events commit
// together with other writes. Readers are woken when InTx commits; a
// caller that commits by other means should call Store.Notify afterwards.
// ErrStreamOvertaken means: roll back and try again in a new transaction.
func (s *Store) AppendTx(ctx context.Context, tx pgx.Tx, stream string, expected eventstore.ExpectedVersion, events ...eventstore.NewEvent) (_ eventstore.AppendResult, err error) {
	defer s.observe(time.Now(), len(events), &err)
	args, err := appendArgs(stream, expected, events)
	if err != nil {
		return eventstore.AppendResult{}, err
	}
	res, err := runAppend(ctx, tx, args)
	if err != nil {
		return eventstore.AppendResult{}, translate(stream, expected, err)
	}
	return res, nil
}

// Notify wakes readers after a transaction that appended was committed
// outside InTx.
func (s *Store) Notify() { s.committed() }

// appendArgs validates the events and turns them into the append
// function's array arguments.
func appendArgs(stream string, expected eventstore.ExpectedVersion, events []eventstore.NewEvent) ([]any, error) {
	if err := eventstore.Validate(stream, expected, events); err != nil {
		return nil, err
	}
	n := len(events)
	ids := make([]uuid.UUID, n)
	types := make([]string, n)
	versions := make([]int32, n)
	data := make([]string, n)
	meta := make([]string, n)
	for i, e := range events {
		m, err := json.Marshal(e.Metadata)
		if err != nil {
			return nil, fmt.Errorf("append to %s: metadata: %w", stream, err)
		}
		if len(e.Data)+len(m) > eventstore.MaxEventSize {
			return nil, fmt.Errorf("%w: event %d of %s is over %d bytes", eventstore.ErrInvalidEvent, i, stream, eventstore.MaxEventSize)
		}
		ids[i], types[i], versions[i] = e.ID, e.Type, int32(max(e.SchemaVersion, 1))
		data[i], meta[i] = string(e.Data), string(m)
	}
	return []any{stream, int64(expected), ids, types, versions, data, meta}, nil
}

func runAppend(ctx context.Context, q querier, args []any) (eventstore.AppendResult, error) {
	return scanAppend(q.Query(ctx, appendSQL, args...))
}

// scanAppend reads the rows of an append statement: for each event its
// version, position and transaction, and whether it was recorded already.
func scanAppend(rows pgx.Rows, err error) (eventstore.AppendResult, error) {
	if err != nil {
		return eventstore.AppendResult{}, err
	}
	var res eventstore.AppendResult
	type row struct {
		version int64
		pos     eventstore.Position
	}
	var out []row
	for rows.Next() {
		var r row
		var txid int64
		if err := rows.Scan(&r.version, &r.pos.Global, &txid, &res.Duplicate); err != nil {
			rows.Close()
			return eventstore.AppendResult{}, err
		}
		r.pos.TransactionID = uint64(txid)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return eventstore.AppendResult{}, err
	}
	slices.SortFunc(out, func(a, b row) int { return int(a.version - b.version) })
	for _, r := range out {
		res.Positions = append(res.Positions, r.pos)
	}
	if len(out) > 0 {
		res.StreamVersion = out[len(out)-1].version
	}
	return res, nil
}

// eventColumns are the columns that scanEvents reads. transaction_id is
// selected as the xid8 it is (pgx scans it into a uint64): an expression
// such as transaction_id::text::bigint would take the column's name in the
// output, and ORDER BY transaction_id would then sort by that expression,
// which no index has, instead of scanning events_transaction_position.
//
// The metadata comes back as one text column per field of
// eventstore.Metadata (metadataFields), which costs the server little,
// rather than as a JSON object that the client would have to decode: that
// decoding was most of the client's time when catching up.
var eventColumns = `global_position, transaction_id, stream_id, stream_version,
event_id, event_type, schema_version, data, recorded_at` + metadataColumns()

// metadataFields are the JSON names of eventstore.Metadata's fields, in
// order; a test checks them against the struct.
var metadataFields = []string{"correlation_id", "causation_id", "actor", "idempotency_key", "trace_parent"}

func metadataColumns() string {
	var cols string
	for _, f := range metadataFields {
		cols += fmt.Sprintf(",\ncoalesce(metadata->>'%s', '')", f)
	}
	return cols
}

// ReadStream implements eventstore.Store.
func (s *Store) ReadStream(ctx context.Context, stream string, after int64, limit int) ([]eventstore.Event, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+eventColumns+` FROM events
WHERE stream_id = $1 AND stream_version > $2 ORDER BY stream_version LIMIT $3`, stream, after, limit)
	if err != nil {
		return nil, fmt.Errorf("read stream %s: %w", stream, err)
	}
	events, err := scanEvents(rows, limit)
	if err != nil {
		return nil, fmt.Errorf("read stream %s: %w", stream, err)
	}
	return events, nil
}

// horizon is the condition that keeps readers below every transaction
// that may still be running.
const horizon = `transaction_id < pg_snapshot_xmin(pg_current_snapshot())`

// ReadAll implements eventstore.Store.
func (s *Store) ReadAll(ctx context.Context, after eventstore.Position, limit int) ([]eventstore.Event, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+eventColumns+` FROM events
WHERE (transaction_id, global_position) > ($1::text::xid8, $2) AND `+horizon+`
ORDER BY transaction_id, global_position LIMIT $3`,
		fmt.Sprint(after.TransactionID), after.Global, limit)
	if err != nil {
		return nil, fmt.Errorf("read all after %s: %w", after, err)
	}
	events, err := scanEvents(rows, limit)
	if err != nil {
		return nil, fmt.Errorf("read all after %s: %w", after, err)
	}
	return events, nil
}

// Head implements eventstore.Store.
func (s *Store) Head(ctx context.Context) (eventstore.Position, time.Time, error) {
	var pos eventstore.Position
	var at time.Time
	// transaction_id as xid8, so that the ORDER BY uses the index; see eventColumns.
	err := s.pool.QueryRow(ctx, `SELECT transaction_id, global_position, recorded_at
FROM events WHERE `+horizon+` ORDER BY transaction_id DESC, global_position DESC LIMIT 1`).
		Scan(&pos.TransactionID, &pos.Global, &at)
	if errors.Is(err, pgx.ErrNoRows) {
		return eventstore.Position{}, time.Time{}, nil
	}
	if err != nil {
		return eventstore.Position{}, time.Time{}, fmt.Errorf("read head: %w", err)
	}
	return pos, at, nil
}

func scanEvents(rows pgx.Rows, limit int) ([]eventstore.Event, error) {
	defer rows.Close()
	// One row is scanned at a time into these, through one list of
	// destinations, and then copied into the result: scanning into each
	// event's own fields would allocate the event and the list per row.
	var (
		e      eventstore.Event
		schema int32
		data   []byte
		id     pgtype.UUID // uuid.UUID is an sql.Scanner: pgx would format it as text and parse it back
	)
	m := &e.Metadata
	dest := []any{&e.Position.Global, &e.Position.TransactionID, &e.StreamID, &e.StreamVersion,
		&id, &e.Type, &schema, &data, &e.RecordedAt,
		&m.CorrelationID, &m.CausationID, &m.Actor, &m.IdempotencyKey, &m.TraceParent}
	events := []eventstore.Event{}
	for rows.Next() {
		data = nil // pgx copies each value into a new slice
		if err := rows.Scan(dest...); err != nil {
			return nil, err
		}
		e.ID = id.Bytes
		e.SchemaVersion = int(schema)
		e.Data = data
		if cap(events) == 0 {
			events = make([]eventstore.Event, 0, min(limit, 1024))
		}
		events = append(events, e)
	}
	return events, rows.Err()
}

// observe tells Options.ObserveAppend of an append that began at start.
func (s *Store) observe(start time.Time, events int, err *error) {
	if s.opts.ObserveAppend != nil {
		s.opts.ObserveAppend(events, time.Since(start), *err)
	}
}
