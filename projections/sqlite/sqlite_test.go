package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	essqlite "github.com/imageservice/imageservice/eventstore/sqlite"
	"github.com/imageservice/imageservice/projections/projectiontest"
	"github.com/imageservice/imageservice/projections/sqlite"
)

func TestConformance(t *testing.T) {
	projectiontest.Exercise(t, func(t *testing.T, cfg projectiontest.Config) projectiontest.Backend {
		store := newStore(t)
		model := sqlite.New(store, sqlite.WithLogger(cfg.Logger), sqlite.WithRebuildBatchSize(cfg.RebuildBatchSize))
		return projectiontest.Backend{Store: store, Model: model, Rebuild: model.Rebuild}
	})
}

// newStore opens a migrated store on a fresh file in t.TempDir.
func newStore(t testing.TB) *essqlite.Store {
	t.Helper()
	ctx := context.Background()
	store, err := essqlite.Open(ctx, filepath.Join(t.TempDir(), "events.db"), essqlite.Options{Synchronous: "NORMAL"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := store.Close(); err != nil {
			t.Error(err)
		}
	})
	if err := sqlite.Migrate(ctx, store); err != nil {
		t.Fatal(err)
	}
	return store
}

func TestMigrateIsIdempotent(t *testing.T) {
	t.Parallel()
	store := newStore(t)
	ctx := context.Background()
	if err := sqlite.Migrate(ctx, store); err != nil {
		t.Fatal(err)
	}
	pending, err := sqlite.Pending(ctx, store)
	if err != nil || pending {
		t.Fatalf("Pending = %v, %v; want false", pending, err)
	}
}
