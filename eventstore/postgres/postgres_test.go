package postgres_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/imageservice/imageservice/eventstore"
	"github.com/imageservice/imageservice/eventstore/postgres"
	"github.com/imageservice/imageservice/eventstore/storetest"
	"github.com/imageservice/imageservice/internal/pgtest"
)

func TestConformance(t *testing.T) {
	storetest.Exercise(t, func(t *testing.T) storetest.Backend {
		appends := new(storetest.AppendLog)
		store := newStoreWith(t, postgres.Options{ObserveAppend: appends.Observe})
		return storetest.Backend{Store: store, Begin: beginFunc(store), Appends: appends}
	})
}

// newStore returns a migrated store in a fresh schema that is dropped
// when the test ends.
func newStore(t testing.TB) *postgres.Store { return newStoreWith(t, postgres.Options{}) }

// newStoreWith is newStore with options; the channel is the schema's.
func newStoreWith(t testing.TB, opts postgres.Options) *postgres.Store {
	t.Helper()
	pool := pgtest.Pool(t)
	ctx := context.Background()
	if err := postgres.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	opts.Channel = pool.Config().ConnConfig.RuntimeParams["search_path"]
	s := postgres.Open(pool, opts)
	t.Cleanup(s.Close)
	return s
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

// Migrate gives a log without planner statistics (restored from a dump,
// say) its statistics, so that ReadAll walks the index.
func TestMigrateAnalyzesAnUnanalyzedLog(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	analyzed := func() bool {
		var n int
		if err := s.Pool().QueryRow(ctx, `SELECT count(*) FROM pg_stats WHERE schemaname = current_schema() AND tablename = 'events'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n > 0
	}
	if err := postgres.Migrate(ctx, s.Pool()); err != nil || analyzed() {
		t.Fatalf("an empty log was analyzed (%v)", err)
	}
	for i := range 50 {
		e := eventstore.NewEvent{ID: eventstore.NewEventID(), Type: "T", SchemaVersion: 1, Data: []byte(fmt.Sprintf(`{"n": %d}`, i))}
		if _, err := s.Append(ctx, "analyze", eventstore.Any, e); err != nil {
			t.Fatal(err)
		}
	}
	if analyzed() {
		t.Skip("autovacuum analyzed the table first")
	}
	if err := postgres.Migrate(ctx, s.Pool()); err != nil {
		t.Fatal(err)
	}
	if !analyzed() {
		t.Fatal("Migrate left a log of 50 events without statistics")
	}
}
