package sqlite_test

// Benchmarks of the SQLite event store against raw database/sql inserts
// into an equivalent table in the same file, measured in the same run so
// that the ratio survives a noisy machine. Each result line carries our
// rate, the peer's and the ratio ours/raw. Run them (see
// docs/benchmarks.md for the recorded numbers) with:
//
//	go test -run '^$' -bench . -benchtime 1000x -count 3 ./eventstore/sqlite/
//
// The two sides never run at the same time: they alternate in chunks (or,
// for reads, one sample each per iteration), so a burst of load from
// elsewhere hits both.

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/imageservice/imageservice/eventstore"
	"github.com/imageservice/imageservice/eventstore/sqlite"
)

// rawTableSQL is the peer's table: the columns and constraints of events,
// without the streams table and the checks of an append.
const rawTableSQL = `CREATE TABLE raw_events (
    global_position INTEGER PRIMARY KEY AUTOINCREMENT,
    stream_id       TEXT    NOT NULL,
    stream_version  INTEGER NOT NULL,
    event_id        BLOB    NOT NULL UNIQUE,
    event_type      TEXT    NOT NULL,
    schema_version  INTEGER NOT NULL,
    data            TEXT    NOT NULL,
    metadata        TEXT    NOT NULL,
    recorded_at     INTEGER NOT NULL,
    UNIQUE (stream_id, stream_version)
) STRICT`

const rawColumns = `(stream_id, stream_version, event_id, event_type, schema_version, data, metadata, recorded_at)`

// rawReadSQL is the peer of ReadAll: the same rows, metadata decoded in Go.
const rawReadSQL = `SELECT global_position, stream_id, stream_version, event_id, event_type,
schema_version, data, metadata, recorded_at FROM events WHERE global_position > ? ORDER BY global_position LIMIT ?`

// benchEvent is a typical event: a small data object and full metadata.
func benchEvent() eventstore.NewEvent {
	return eventstore.NewEvent{
		ID:            eventstore.NewEventID(),
		Type:          "ImageUploaded",
		SchemaVersion: 1,
		Data: json.RawMessage(fmt.Sprintf(`{"image_id": %q, "width": 1920, "height": 1080, "format": "png", "size": 1048576, "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}`,
			uuid.New())),
		Metadata: eventstore.Metadata{
			CorrelationID:  uuid.NewString(),
			CausationID:    uuid.NewString(),
			Actor:          "api-key:bench",
			IdempotencyKey: uuid.NewString(),
			TraceParent:    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		},
	}
}

func benchEvents(n int) []eventstore.NewEvent {
	evs := make([]eventstore.NewEvent, n)
	for i := range evs {
		evs[i] = benchEvent()
	}
	return evs
}

// benchFiles opens a store and, on the same file, the peer's single
// writer connection with the store's settings (WAL, synchronous=FULL).
func benchFiles(b *testing.B) (*sqlite.Store, *sql.DB) {
	path := filepath.Join(b.TempDir(), "bench.db")
	store, err := sqlite.Open(context.Background(), path, sqlite.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { store.Close() })
	raw, err := sql.Open("sqlite", "file:"+(&url.URL{Path: path}).EscapedPath()+
		"?_txlock=immediate&_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)")
	if err != nil {
		b.Fatal(err)
	}
	raw.SetMaxOpenConns(1)
	b.Cleanup(func() { raw.Close() })
	if _, err := raw.Exec(rawTableSQL); err != nil {
		b.Fatal(err)
	}
	return store, raw
}

// rawAppend is the peer of an append: one INSERT ... RETURNING of all the
// events, in a transaction when there are several.
func rawAppend(ctx context.Context, db *sql.DB, stream string, version int64, events []eventstore.NewEvent) error {
	args := make([]any, 0, 8*len(events))
	now := time.Now().UnixNano()
	for i, e := range events {
		m, err := json.Marshal(e.Metadata)
		if err != nil {
			return err
		}
		args = append(args, stream, version+int64(i)+1, e.ID[:], e.Type, e.SchemaVersion, string(e.Data), string(m), now)
	}
	q := `INSERT INTO raw_events ` + rawColumns + ` VALUES ` +
		strings.Repeat("(?, ?, ?, ?, ?, ?, ?, ?), ", len(events)-1) + `(?, ?, ?, ?, ?, ?, ?, ?) RETURNING global_position`
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var pos int64
		if err := rows.Scan(&pos); err != nil {
			return err
		}
	}
	return rows.Err()
}

// phase runs n calls of fn spread over writers goroutines and returns the
// wall time. Writer w only ever runs fn(w, ...), so it may own state.
func phase(n, writers int, fn func(w, i int) error) (time.Duration, error) {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, writers)
	start := time.Now()
	for w := range writers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := fn(w, i); err != nil {
					errs[w] = err
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	for _, err := range errs {
		if err != nil {
			return elapsed, err
		}
	}
	return elapsed, nil
}

// BenchmarkAppend compares Append with raw inserts into raw_events: b.N
// appends on each side, one writer or eight concurrent writers, each on its
// own stream with an exact expected version, in alternating chunks.
func BenchmarkAppend(b *testing.B) {
	for _, tc := range []struct {
		name           string
		writers, batch int
	}{
		{"events=1/writers=1", 1, 1},
		{"events=1/writers=8", 8, 1},
		{"events=100/writers=1", 1, 100},
	} {
		b.Run(tc.name, func(b *testing.B) { benchAppend(b, tc.writers, tc.batch) })
	}
}

func benchAppend(b *testing.B, writers, batch int) {
	store, raw := benchFiles(b)
	ctx := context.Background()
	oursVersion := make([]int64, writers)
	rawVersion := make([]int64, writers)
	var chunk [][]eventstore.NewEvent // made before the chunk's clock starts
	ours := func(w, i int) error {
		res, err := store.Append(ctx, fmt.Sprintf("ours-%d", w), eventstore.Exact(oursVersion[w]), chunk[i]...)
		oursVersion[w] = res.StreamVersion
		return err
	}
	rawSide := func(w, i int) error {
		err := rawAppend(ctx, raw, fmt.Sprintf("raw-%d", w), rawVersion[w], chunk[i])
		rawVersion[w] += int64(batch)
		return err
	}
	chunkSize := 25 * writers
	if batch > 1 {
		chunkSize = 5 * writers
	}
	type side struct {
		fn   func(w, i int) error
		time *time.Duration
	}
	var oursTime, rawTime time.Duration
	b.ResetTimer()
	for done, k := 0, 0; done < b.N; k++ {
		n := min(chunkSize, b.N-done)
		sides := []side{{ours, &oursTime}, {rawSide, &rawTime}}
		if k%2 == 1 {
			slices.Reverse(sides)
		}
		for _, s := range sides {
			b.StopTimer()
			chunk = chunk[:0]
			for range n {
				chunk = append(chunk, benchEvents(batch))
			}
			b.StartTimer()
			d, err := phase(n, writers, s.fn)
			if err != nil {
				b.Fatal(err)
			}
			*s.time += d
		}
		done += n
	}
	b.StopTimer()
	report(b, float64(b.N*batch), oursTime, rawTime,
		fmt.Sprintf("%d appends of %d event(s) per side, %d writer(s)", b.N, batch, writers))
}

// report adds our rate, the peer's and the ratio to the result line.
func report(b *testing.B, events float64, oursTime, rawTime time.Duration, what string) {
	oursRate, rawRate := events/oursTime.Seconds(), events/rawTime.Seconds()
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(oursRate, "events/s")
	b.ReportMetric(rawRate, "raw-events/s")
	b.ReportMetric(oursRate/rawRate, "ours/raw")
	if b.N > 1 {
		b.Logf("%s: ours %.0f events/s, raw %.0f events/s, ratio ours/raw %.2f", what, oursRate, rawRate, oursRate/rawRate)
	}
}

// catchUpEvents is how many events BenchmarkCatchUp reads through.
const catchUpEvents = 100_000

// BenchmarkCatchUp compares ReadAll in batches of 1000 with a raw keyset
// scan of the same rows on the store's read pool. Each iteration reads one
// batch on each side (which goes first alternates), starting over from
// the beginning after the end.
func BenchmarkCatchUp(b *testing.B) {
	const batch = 1000
	store, _ := benchFiles(b)
	ctx := context.Background()
	for i := range catchUpEvents / 100 {
		if _, err := store.Append(ctx, fmt.Sprintf("load-%d", i), eventstore.NoStream, benchEvents(100)...); err != nil {
			b.Fatal(err)
		}
	}
	var oursPos eventstore.Position
	var rawPos int64
	var oursTime, rawTime time.Duration
	ours := func() error {
		start := time.Now()
		events, err := store.ReadAll(ctx, oursPos, batch)
		oursTime += time.Since(start)
		oursPos = eventstore.Position{}
		if len(events) == batch {
			oursPos = events[len(events)-1].Position
		}
		return err
	}
	rawSide := func() error {
		start := time.Now()
		events, err := rawRead(ctx, store.ReadDB(), rawPos, batch)
		rawTime += time.Since(start)
		rawPos = 0
		if len(events) == batch {
			rawPos = events[len(events)-1].Position.Global
		}
		return err
	}
	b.ResetTimer()
	for i := range b.N {
		sides := []func() error{ours, rawSide}
		if i%2 == 1 {
			slices.Reverse(sides)
		}
		for _, side := range sides {
			if err := side(); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.StopTimer()
	report(b, float64(b.N*batch), oursTime, rawTime, fmt.Sprintf("%d reads of %d events per side", b.N, batch))
}

// rawRead scans up to limit events after a global position.
func rawRead(ctx context.Context, db *sql.DB, after int64, limit int) ([]eventstore.Event, error) {
	rows, err := db.QueryContext(ctx, rawReadSQL, after, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	events := make([]eventstore.Event, 0, limit)
	for rows.Next() {
		var e eventstore.Event
		var id []byte
		var data, meta string
		var at int64
		if err := rows.Scan(&e.Position.Global, &e.StreamID, &e.StreamVersion, &id, &e.Type,
			&e.SchemaVersion, &data, &meta, &at); err != nil {
			return nil, err
		}
		if e.ID, err = uuid.FromBytes(id); err != nil {
			return nil, err
		}
		if err := json.Unmarshal([]byte(meta), &e.Metadata); err != nil {
			return nil, err
		}
		e.Data, e.RecordedAt = []byte(data), time.Unix(0, at).UTC()
		events = append(events, e)
	}
	return events, rows.Err()
}
