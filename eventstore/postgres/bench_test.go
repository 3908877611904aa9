package postgres_test

// Benchmarks of the PostgreSQL event store against raw pgx on an
// equivalent table, always measured in the same run so that the ratio
// survives a noisy machine. Every benchmark reports its own numbers, the
// peer's and the ratio ours/raw as metrics on its result line. Run them
// (see docs/benchmarks.md for the recorded numbers) with:
//
//	TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test \
//	  go test -run '^$' -bench . -benchtime 1000x -count 3 ./eventstore/postgres/
//
// The two sides never run at the same time: they alternate in chunks (or,
// for reads and wake-ups, one sample each per iteration), so a burst of
// load from elsewhere hits both.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/imageservice/imageservice/eventstore"
	"github.com/imageservice/imageservice/eventstore/postgres"
)

// rawTableSQL is the peer's table: the columns, defaults and indexes of
// events, without the streams table and the append function.
const rawTableSQL = `CREATE TABLE raw_events (
    global_position bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    transaction_id  xid8        NOT NULL DEFAULT pg_current_xact_id(),
    stream_id       text        NOT NULL,
    stream_version  bigint      NOT NULL,
    event_id        uuid        NOT NULL,
    event_type      text        NOT NULL,
    schema_version  integer     NOT NULL,
    data            jsonb       NOT NULL,
    metadata        jsonb       NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT raw_events_event_id_key UNIQUE (event_id),
    CONSTRAINT raw_events_stream_version_key UNIQUE (stream_id, stream_version)
);
CREATE INDEX raw_events_transaction_position ON raw_events (transaction_id, global_position)`

// rawInsertSQL is the peer of a one-event append: one statement that
// returns the position, as Append does.
const rawInsertSQL = `INSERT INTO raw_events
    (stream_id, stream_version, event_id, event_type, schema_version, data, metadata)
VALUES ($1, $2, $3, $4, $5, $6, $7)
RETURNING global_position, transaction_id`

// rawBatchSQL is the peer of a batch append: one statement for the whole
// batch (faster here than CopyFrom, which costs an extra round trip).
const rawBatchSQL = `INSERT INTO raw_events
    (stream_id, stream_version, event_id, event_type, schema_version, data, metadata)
SELECT $1, $2 + x.ord, x.id, x.typ, x.sv, x.data, x.meta
  FROM unnest($3::uuid[], $4::text[], $5::integer[], $6::jsonb[], $7::jsonb[])
       WITH ORDINALITY AS x(id, typ, sv, data, meta, ord)
RETURNING global_position, transaction_id`

// rawReadSQL is the peer of ReadAll: a keyset scan of the same rows by
// global position, without the transaction order and the horizon.
const rawReadSQL = `SELECT global_position, transaction_id, stream_id, stream_version,
event_id, event_type, schema_version, data, metadata, recorded_at
FROM events WHERE global_position > $1 ORDER BY global_position LIMIT $2`

// benchEvent is a typical event: a small data object and full metadata.
func benchEvent() eventstore.NewEvent {
	id := eventstore.NewEventID()
	return eventstore.NewEvent{
		ID:            id,
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

func randomID() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// rawAppend inserts events into raw_events the way the peer does: one
// statement per append, a single INSERT for one event and an unnest
// INSERT for a batch.
func rawAppend(ctx context.Context, pool *pgxpool.Pool, stream string, version int64, events []eventstore.NewEvent) error {
	if len(events) == 1 {
		e := events[0]
		var pos, txid uint64
		return pool.QueryRow(ctx, rawInsertSQL, stream, version+1, e.ID, e.Type, e.SchemaVersion,
			string(e.Data), e.Metadata).Scan(&pos, &txid)
	}
	n := len(events)
	ids := make([]uuid.UUID, n)
	types := make([]string, n)
	svs := make([]int32, n)
	data := make([]string, n)
	meta := make([]eventstore.Metadata, n)
	for i, e := range events {
		ids[i], types[i], svs[i], data[i], meta[i] = e.ID, e.Type, int32(e.SchemaVersion), string(e.Data), e.Metadata
	}
	rows, err := pool.Query(ctx, rawBatchSQL, stream, version, ids, types, svs, data, meta)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var pos, txid uint64
		if err := rows.Scan(&pos, &txid); err != nil {
			return err
		}
	}
	return rows.Err()
}

// rawRead scans up to limit events after a global position into events.
func rawRead(ctx context.Context, pool *pgxpool.Pool, after int64, limit int) ([]eventstore.Event, error) {
	rows, err := pool.Query(ctx, rawReadSQL, after, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	events := make([]eventstore.Event, 0, limit)
	for rows.Next() {
		var e eventstore.Event
		var data []byte // scanned as is: into a json.RawMessage pgx would validate it
		if err := rows.Scan(&e.Position.Global, &e.Position.TransactionID, &e.StreamID, &e.StreamVersion,
			&e.ID, &e.Type, &e.SchemaVersion, &data, &e.Metadata, &e.RecordedAt); err != nil {
			return nil, err
		}
		e.Data = data
		events = append(events, e)
	}
	return events, rows.Err()
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
	store := newStore(b)
	pool := store.Pool()
	ctx := context.Background()
	if _, err := pool.Exec(ctx, rawTableSQL); err != nil {
		b.Fatal(err)
	}
	run := randomID()
	oursVersion := make([]int64, writers)
	rawVersion := make([]int64, writers)
	// Each chunk's events are made before its clock starts.
	var chunk [][]eventstore.NewEvent
	ours := func(w, i int) error {
		stream := fmt.Sprintf("ours-%s-%d", run, w)
		res, err := store.Append(ctx, stream, eventstore.Exact(oursVersion[w]), chunk[i]...)
		oursVersion[w] = res.StreamVersion
		return err
	}
	raw := func(w, i int) error {
		stream := fmt.Sprintf("raw-%s-%d", run, w)
		err := rawAppend(ctx, pool, stream, rawVersion[w], chunk[i])
		rawVersion[w] += int64(batch)
		return err
	}
	chunkSize := 25 * writers
	if batch > 1 {
		chunkSize = 5 * writers
	}
	var oursTime, rawTime time.Duration
	type side struct {
		fn   func(w, i int) error
		time *time.Duration
	}
	b.ResetTimer()
	for done, k := 0, 0; done < b.N; k++ {
		n := min(chunkSize, b.N-done)
		sides := []side{{ours, &oursTime}, {raw, &rawTime}}
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
	events := float64(b.N * batch)
	oursRate, rawRate := events/oursTime.Seconds(), events/rawTime.Seconds()
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(oursRate, "events/s")
	b.ReportMetric(rawRate, "raw-events/s")
	b.ReportMetric(oursRate/rawRate, "ours/raw")
	if b.N == 1 {
		return // the framework's first, one-iteration run
	}
	b.Logf("%d appends of %d event(s) per side, %d writer(s): ours %.0f events/s, raw %.0f events/s, ratio ours/raw %.2f (target >= 0.80)",
		b.N, batch, writers, oursRate, rawRate, oursRate/rawRate)
}

// catchUpEvents is how many events BenchmarkCatchUp reads through.
const catchUpEvents = 200_000

// BenchmarkCatchUp compares ReadAll in batches of 1000 with a raw keyset
// scan of the same rows. It loads catchUpEvents events with 100-event
// appends, then each iteration reads one batch on each side (which side
// goes first alternates), starting over from the zero position after the
// end, so b.N = 1000 reads the whole log 5 times on each side.
func BenchmarkCatchUp(b *testing.B) {
	const batch = 1000
	store := newStore(b)
	pool := store.Pool()
	ctx := context.Background()
	run := randomID()
	loaded := time.Now()
	if _, err := phase(catchUpEvents/100, 4, func(w, i int) error {
		_, err := store.Append(ctx, fmt.Sprintf("load-%s-%d", run, i), eventstore.NoStream, benchEvents(100)...)
		return err
	}); err != nil {
		b.Fatal(err)
	}
	b.Logf("loaded %d events in %s", catchUpEvents, time.Since(loaded).Round(time.Millisecond))

	// One untimed pass on each side warms the caches and checks that both
	// see every event (the horizon may hold ReadAll back for a moment).
	for {
		n, err := readThrough(ctx, store, pool)
		if err != nil {
			b.Fatal(err)
		}
		if n == catchUpEvents {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}

	var oursPos eventstore.Position
	var rawPos int64
	var oursTime, rawTime time.Duration
	var oursN, rawN int
	ours := func() error {
		start := time.Now()
		events, err := store.ReadAll(ctx, oursPos, batch)
		oursTime += time.Since(start)
		oursN += len(events)
		if len(events) < batch {
			oursPos = eventstore.Position{}
		} else {
			oursPos = events[len(events)-1].Position
		}
		return err
	}
	raw := func() error {
		start := time.Now()
		events, err := rawRead(ctx, pool, rawPos, batch)
		rawTime += time.Since(start)
		rawN += len(events)
		if len(events) < batch {
			rawPos = 0
		} else {
			rawPos = events[len(events)-1].Position.Global
		}
		return err
	}
	i := 0
	for b.Loop() {
		first, second := ours, raw
		if i%2 == 1 {
			first, second = raw, ours
		}
		if err := first(); err != nil {
			b.Fatal(err)
		}
		if err := second(); err != nil {
			b.Fatal(err)
		}
		i++
	}
	oursRate, rawRate := float64(oursN)/oursTime.Seconds(), float64(rawN)/rawTime.Seconds()
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(oursRate, "events/s")
	b.ReportMetric(rawRate, "raw-events/s")
	b.ReportMetric(oursRate/rawRate, "ours/raw")
	b.Logf("read %d events per side in batches of %d from a log of %d: ours %.0f events/s (target >= 200000), raw %.0f events/s, ratio ours/raw %.2f",
		oursN, batch, catchUpEvents, oursRate, rawRate, oursRate/rawRate)
}

// readThrough reads the whole log once with ReadAll and once raw, and
// returns how many events ReadAll returned.
func readThrough(ctx context.Context, store *postgres.Store, pool *pgxpool.Pool) (int, error) {
	var n int
	var pos eventstore.Position
	for {
		events, err := store.ReadAll(ctx, pos, 1000)
		if err != nil {
			return 0, err
		}
		if len(events) == 0 {
			break
		}
		n += len(events)
		pos = events[len(events)-1].Position
	}
	var raw int64
	for {
		events, err := rawRead(ctx, pool, raw, 1000)
		if err != nil {
			return 0, err
		}
		if len(events) == 0 {
			break
		}
		raw = events[len(events)-1].Position.Global
	}
	return n, nil
}

// BenchmarkWakeup measures the time from just before Append until a
// Follow handler sees the event, one append at a time after the previous
// one arrived: with the subscriber on the appending Store (in-process, woken
// by the local signal) and on a second Store with its own pool (as another
// process would be, woken by LISTEN/NOTIFY or polling). Each iteration
// takes one sample of ours and of two raw pgx peers: a bare NOTIFY on one
// connection until WaitForNotification returns on another ("raw"), and an
// INSERT into raw_events plus NOTIFY in one transaction ("rawtx", which
// like an append waits for a commit to be flushed).
func BenchmarkWakeup(b *testing.B) {
	b.Run("in-process", func(b *testing.B) { benchWakeup(b, false) })
	b.Run("cross-process", func(b *testing.B) { benchWakeup(b, true) })
}

func benchWakeup(b *testing.B, crossProcess bool) {
	store := newStore(b)
	pool := store.Pool()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := pool.Exec(ctx, rawTableSQL); err != nil {
		b.Fatal(err)
	}
	channel := pool.Config().ConnConfig.RuntimeParams["search_path"]
	subscriber := store
	if crossProcess {
		pool2, err := pgxpool.NewWithConfig(ctx, pool.Config())
		if err != nil {
			b.Fatal(err)
		}
		defer pool2.Close()
		subscriber = postgres.Open(pool2, postgres.Options{Channel: channel})
		defer subscriber.Close()
	}

	seen := make(chan time.Time, 1)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	wg.Go(func() {
		_ = eventstore.Follow(ctx, subscriber, eventstore.Position{}, eventstore.ReadOptions{},
			func(ctx context.Context, events []eventstore.Event, next eventstore.Position) error {
				now := time.Now()
				for range events {
					seen <- now
				}
				return nil
			})
	})

	listener, err := pgx.ConnectConfig(ctx, pool.Config().ConnConfig)
	if err != nil {
		b.Fatal(err)
	}
	defer listener.Close(context.Background())
	notifier, err := pgx.ConnectConfig(ctx, pool.Config().ConnConfig)
	if err != nil {
		b.Fatal(err)
	}
	defer notifier.Close(context.Background())
	rawChannel := "raw_" + channel
	if _, err := listener.Exec(ctx, "LISTEN "+rawChannel); err != nil {
		b.Fatal(err)
	}

	stream := "wakeup-" + randomID()
	var version, rawVersion int64
	oursSample := func() (time.Duration, error) {
		e := benchEvent()
		start := time.Now()
		res, err := store.Append(ctx, stream, eventstore.Exact(version), e)
		if err != nil {
			return 0, err
		}
		version = res.StreamVersion
		select {
		case at := <-seen:
			return at.Sub(start), nil
		case <-time.After(10 * time.Second):
			return 0, fmt.Errorf("event %d not seen after 10 s", version)
		}
	}
	rawSample := func(insert bool) (time.Duration, error) {
		e := benchEvent()
		start := time.Now()
		if insert {
			batch := &pgx.Batch{}
			batch.Queue(rawInsertSQL, stream, rawVersion+1, e.ID, e.Type, e.SchemaVersion, string(e.Data), e.Metadata)
			batch.Queue("SELECT pg_notify($1, '')", rawChannel)
			if err := notifier.SendBatch(ctx, batch).Close(); err != nil {
				return 0, err
			}
			rawVersion++
		} else if _, err := notifier.Exec(ctx, "SELECT pg_notify($1, '')", rawChannel); err != nil {
			return 0, err
		}
		wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
		defer wcancel()
		if _, err := listener.WaitForNotification(wctx); err != nil {
			return 0, err
		}
		return time.Since(start), nil
	}
	// Warm up: the subscriber has caught up and every statement is prepared.
	for range 5 {
		if _, err := oursSample(); err != nil {
			b.Fatal(err)
		}
		if _, err := rawSample(false); err != nil {
			b.Fatal(err)
		}
		if _, err := rawSample(true); err != nil {
			b.Fatal(err)
		}
	}

	var ours, raw, rawTx []time.Duration
	for b.Loop() {
		d, err := oursSample()
		if err != nil {
			b.Fatal(err)
		}
		ours = append(ours, d)
		if d, err = rawSample(false); err != nil {
			b.Fatal(err)
		}
		raw = append(raw, d)
		if d, err = rawSample(true); err != nil {
			b.Fatal(err)
		}
		rawTx = append(rawTx, d)
	}
	p50, p99 := percentile(ours, 50), percentile(ours, 99)
	rawP50, rawP99 := percentile(raw, 50), percentile(raw, 99)
	txP50, txP99 := percentile(rawTx, 50), percentile(rawTx, 99)
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(p50, "p50-ms")
	b.ReportMetric(p99, "p99-ms")
	b.ReportMetric(rawP50, "raw-p50-ms")
	b.ReportMetric(rawP99, "raw-p99-ms")
	b.ReportMetric(p50/rawP50, "p50-ours/raw")
	b.ReportMetric(txP50, "rawtx-p50-ms")
	b.ReportMetric(p50/txP50, "p50-ours/rawtx")
	b.Logf("%d samples: ours p50 %.2f ms (target < 10), p99 %.2f ms; raw NOTIFY p50 %.2f ms, p99 %.2f ms; raw INSERT+NOTIFY p50 %.2f ms, p99 %.2f ms; ratio ours/raw p50 %.2f, p99 %.2f; ours/rawtx p50 %.2f, p99 %.2f",
		len(ours), p50, p99, rawP50, rawP99, txP50, txP99, p50/rawP50, p99/rawP99, p50/txP50, p99/txP99)
}

// percentile returns the p-th percentile of ds in milliseconds (nearest rank).
func percentile(ds []time.Duration, p float64) float64 {
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(float64(len(s))*p/100+0.999999) - 1
	i = min(max(i, 0), len(s)-1)
	return float64(s[i]) / float64(time.Millisecond)
}
