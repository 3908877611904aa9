package postgres_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/imageservice/imageservice/eventstore"
	espg "github.com/imageservice/imageservice/eventstore/postgres"
	"github.com/imageservice/imageservice/images"
	"github.com/imageservice/imageservice/projections"
	"github.com/imageservice/imageservice/projections/postgres"
)

// env is one test's database schema with a migrated event store and read model.
type env struct {
	store  *espg.Store
	model  *postgres.ReadModel
	pool   *pgxpool.Pool
	tracer *countingTracer
	logs   *syncBuffer
}

// newEnv makes a fresh schema, migrates it and opens the store and model.
func newEnv(t *testing.T, opts ...postgres.Option) *env {
	t.Helper()
	tracer := &countingTracer{}
	pool := newTestPool(t, tracer)
	ctx := context.Background()
	if err := espg.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	if err := postgres.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	store := espg.Open(pool, espg.Options{Channel: pool.Config().ConnConfig.RuntimeParams["search_path"]})
	t.Cleanup(store.Close)
	logs := &syncBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	opts = append([]postgres.Option{postgres.WithLogger(logger)}, opts...)
	return &env{store: store, model: postgres.New(store, opts...), pool: pool, tracer: tracer, logs: logs}
}

// newTestPool connects to TEST_DATABASE_URL with a fresh schema as its
// search_path (dropped when the test ends), or skips the test when the
// variable is unset.
func newTestPool(t *testing.T, tracer pgx.QueryTracer) *pgxpool.Pool {
	t.Helper()
	url := os.Getenv("TEST_DATABASE_URL")
	if url == "" {
		t.Skip("TEST_DATABASE_URL is not set: skipping the PostgreSQL tests (e.g. TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test)")
	}
	ctx := context.Background()
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "test_" + hex.EncodeToString(b[:])
	admin, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect to TEST_DATABASE_URL: %v", err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = schema
	cfg.ConnConfig.Tracer = tracer
	cfg.MaxConns = 10
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		pool.Close()
		conn, err := pgx.Connect(context.Background(), url)
		if err == nil {
			_, _ = conn.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
			conn.Close(context.Background())
		}
	})
	return pool
}

// countKey marks the contexts whose queries countingTracer counts.
type countKey struct{}

// countingTracer counts the queries run with a context from counted.
type countingTracer struct{ n atomic.Int64 }

func (c *countingTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	if ctx.Value(countKey{}) != nil {
		c.n.Add(1)
	}
	return ctx
}

func (c *countingTracer) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// counted returns a context whose queries the tracer counts, and a
// function that reports how many ran since.
func (c *countingTracer) counted() (context.Context, func() int64) {
	start := c.n.Load()
	return context.WithValue(context.Background(), countKey{}, true), func() int64 { return c.n.Load() - start }
}

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startProjector runs the projector under a runner until the returned
// function is called (or the test ends).
func (e *env) startProjector(t *testing.T) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	runner := &eventstore.Runner{Store: e.store, LeaseTTL: 3 * time.Second, Logger: slog.New(slog.DiscardHandler)}
	sub := e.model.Projector()
	sub.Read.MaxIdle = 50 * time.Millisecond
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = runner.Run(ctx, sub)
	}()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return stop
}

// waitFor waits, at most 20 s, for the projection to reach pos.
func (e *env) waitFor(t *testing.T, pos eventstore.Position) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := e.model.WaitFor(ctx, pos); err != nil {
		t.Fatal(err)
	}
}

// image is a test image: its state as decided, and the last position written.
type image struct {
	state images.Image
	pos   eventstore.Position
}

var (
	t0   = time.Date(2025, 1, 2, 3, 4, 5, 678901234, time.UTC)
	keyA = strings.Repeat("a", 64)
	keyB = strings.Repeat("b", 64)
)

// apply returns a function that appends the events of a decision to the
// image's stream and folds them into its state.
func (e *env) apply(t *testing.T, img *image) func(events []images.Event, err error) {
	return func(events []images.Event, err error) { e.appendDecision(t, img, events, err) }
}

func (e *env) appendDecision(t *testing.T, img *image, events []images.Event, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	stream := images.StreamID(img.state.ID)
	if img.state.ID == uuid.Nil {
		stream = images.StreamID(events[0].(images.ImageUploaded).ImageID)
	}
	news := make([]eventstore.NewEvent, len(events))
	for i, ev := range events {
		typ, v, data, err := images.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		news[i] = eventstore.NewEvent{ID: eventstore.NewEventID(), Type: typ, SchemaVersion: v, Data: data}
	}
	res, err := e.store.Append(context.Background(), stream, eventstore.Exact(img.state.Version), news...)
	if err != nil {
		t.Fatal(err)
	}
	for i, ev := range events {
		img.state = images.Evolve(img.state, ev, images.EventMeta{StreamVersion: img.state.Version + 1})
		img.pos = res.Positions[i]
	}
}

// upload appends a new image created at the given time with n dithers:
// the first completed and synced, the second failed, the rest pending.
func (e *env) upload(t *testing.T, at time.Time, n int) *image {
	t.Helper()
	img := &image{}
	e.apply(t, img)(images.Upload(images.UploadImage{ImageID: uuid.New(), Filename: "cat.png",
		ContentType: "image/png", ByteSize: 1234, Width: 64, Height: 48, SHA256: keyA, Owner: "tester", Now: at}))
	for i := range n {
		id := uuid.New()
		e.apply(t, img)(images.RequestDither(img.state, images.DitherRequest{DitherID: id,
			Options: images.DitherInput{Levels: 2 + i, Algorithm: "ATKINSON"}, Now: at.Add(time.Duration(i+1) * time.Second)}))
		switch i {
		case 0:
			e.apply(t, img)(images.CompleteDither(img.state, images.DitherResult{DitherID: id, ResultKey: keyB,
				ByteSize: 99, Width: 64, Height: 48, Colours: 8, DurationMs: 12, CompletedAt: at.Add(time.Minute)}))
			e.apply(t, img)(images.MarkDitherSynced(img.state, images.DitherCloudCopy{DitherID: id,
				SecureURL: "https://cloud.example/d.png", PublicID: "d"}))
		case 1:
			e.apply(t, img)(images.FailDither(img.state, images.DitherFailure{DitherID: id, Reason: "too big"}))
		}
	}
	return img
}

// remove deletes the image.
func (e *env) remove(t *testing.T, img *image) {
	t.Helper()
	e.apply(t, img)(images.Delete(img.state, images.DeleteImage{Now: t0.Add(time.Hour)}))
}

// replay reads an image's stream back from the log and folds it.
func (e *env) replay(t *testing.T, id uuid.UUID) images.Image {
	t.Helper()
	recorded, err := e.store.ReadStream(context.Background(), images.StreamID(id), 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	var rs []images.Recorded
	for _, r := range recorded {
		ev, err := images.Unmarshal(r.Type, r.SchemaVersion, r.Data)
		if err != nil {
			t.Fatal(err)
		}
		rs = append(rs, images.Recorded{Event: ev, Meta: images.EventMeta{EventID: r.ID,
			StreamVersion: r.StreamVersion, RecordedAt: r.RecordedAt}})
	}
	return images.Replay(rs...)
}

// snapshot is the whole read model as the Reader returns it.
type snapshot struct {
	images  map[uuid.UUID]projections.Image
	dithers map[uuid.UUID]projections.Page[projections.Dither]
}

// snapshot reads the images with the given ids and their dithers.
func (e *env) snapshot(t *testing.T, ids []uuid.UUID) snapshot {
	t.Helper()
	ctx := context.Background()
	imgs, err := e.model.ImagesByID(ctx, ids)
	if err != nil {
		t.Fatal(err)
	}
	ds, err := e.model.DithersByImage(ctx, ids, projections.MaxPageSize)
	if err != nil {
		t.Fatal(err)
	}
	return snapshot{images: imgs, dithers: ds}
}

// checkpoint returns the projection's stored checkpoint.
func (e *env) checkpoint(t *testing.T) eventstore.Position {
	t.Helper()
	cp, err := e.store.Checkpoint(context.Background(), eventstore.CheckpointKey{Subscription: e.model.Name()})
	if err != nil {
		t.Fatal(err)
	}
	return cp
}

// lastPos returns the latest of the images' positions.
func lastPos(imgs ...*image) eventstore.Position {
	var p eventstore.Position
	for _, img := range imgs {
		if p.Less(img.pos) {
			p = img.pos
		}
	}
	return p
}

// ids returns the images' ids.
func ids(imgs ...*image) []uuid.UUID {
	out := make([]uuid.UUID, len(imgs))
	for i, img := range imgs {
		out[i] = img.state.ID
	}
	return out
}
