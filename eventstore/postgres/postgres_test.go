package postgres_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/imageservice/imageservice/eventstore"
	"github.com/imageservice/imageservice/eventstore/postgres"
	"github.com/imageservice/imageservice/eventstore/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Exercise(t, func(t *testing.T) storetest.Backend {
		store := newStore(t)
		return storetest.Backend{Store: store, Begin: beginFunc(store)}
	})
}

// newStore returns a migrated store in a fresh schema that is dropped
// when the test ends.
func newStore(t testing.TB) *postgres.Store {
	t.Helper()
	pool := NewTestPool(t)
	ctx := context.Background()
	if err := postgres.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	s := postgres.Open(pool, postgres.Options{Channel: pool.Config().ConnConfig.RuntimeParams["search_path"]})
	t.Cleanup(s.Close)
	return s
}

// NewTestPool connects to TEST_DATABASE_URL with a fresh schema as its
// search_path, or skips the test when the variable is unset.
func NewTestPool(t testing.TB) *pgxpool.Pool {
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
	cfg.MaxConns = 20
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

// beginFunc opens transactions that hold their transaction id from the start.
func beginFunc(s *postgres.Store) func(ctx context.Context) (storetest.Tx, error) {
	return func(ctx context.Context) (storetest.Tx, error) {
		tx, err := s.Pool().Begin(ctx)
		if err != nil {
			return nil, err
		}
		if _, err := tx.Exec(ctx, "SELECT pg_current_xact_id()"); err != nil {
			_ = tx.Rollback(ctx)
			return nil, err
		}
		return &pgTx{s: s, tx: tx}, nil
	}
}

type pgTx struct {
	s  *postgres.Store
	tx pgx.Tx
}

func (p *pgTx) Append(ctx context.Context, stream string, expected eventstore.ExpectedVersion, events ...eventstore.NewEvent) (eventstore.AppendResult, error) {
	return p.s.AppendTx(ctx, p.tx, stream, expected, events...)
}

func (p *pgTx) Commit(ctx context.Context) error {
	if err := p.tx.Commit(ctx); err != nil {
		return err
	}
	p.s.Notify()
	return nil
}

func (p *pgTx) Rollback(ctx context.Context) error { return p.tx.Rollback(ctx) }
