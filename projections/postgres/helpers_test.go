package postgres_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	espg "github.com/imageservice/imageservice/eventstore/postgres"
	"github.com/imageservice/imageservice/projections/postgres"
	"github.com/imageservice/imageservice/projections/projectiontest"
)

// env is one test's database schema with a migrated event store and read
// model, and the helpers of the conformance suite's Env.
type env struct {
	*projectiontest.Env
	store  *espg.Store
	model  *postgres.ReadModel
	pool   *pgxpool.Pool
	tracer *countingTracer
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
	e := &env{store: store, pool: pool, tracer: tracer}
	e.Env = projectiontest.NewEnv(t, func(_ *testing.T, cfg projectiontest.Config) projectiontest.Backend {
		e.model = postgres.New(store, append([]postgres.Option{postgres.WithLogger(cfg.Logger)}, opts...)...)
		return projectiontest.Backend{Store: store, Model: e.model}
	})
	return e
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

var (
	t0   = time.Date(2025, 1, 2, 3, 4, 5, 678901234, time.UTC)
	keyA = strings.Repeat("a", 64)
)
