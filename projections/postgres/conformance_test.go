package postgres_test

import (
	"context"
	"testing"

	espg "github.com/imageservice/imageservice/eventstore/postgres"
	"github.com/imageservice/imageservice/internal/pgtest"
	"github.com/imageservice/imageservice/projections/postgres"
	"github.com/imageservice/imageservice/projections/projectiontest"
)

// TestConformance runs the read models' suite (the backend-independent
// tests of the Reader and projector live in projectiontest), each case in
// a fresh schema; it skips when TEST_DATABASE_URL is unset. The tests in
// this package are those of PostgreSQL specifics.
func TestConformance(t *testing.T) {
	projectiontest.Exercise(t, func(t *testing.T, cfg projectiontest.Config) projectiontest.Backend {
		pool := pgtest.Pool(t)
		ctx := context.Background()
		if err := espg.Migrate(ctx, pool); err != nil {
			t.Fatal(err)
		}
		if err := postgres.Migrate(ctx, pool); err != nil {
			t.Fatal(err)
		}
		store := espg.Open(pool, espg.Options{Channel: pool.Config().ConnConfig.RuntimeParams["search_path"]})
		t.Cleanup(store.Close)
		model := postgres.New(store, postgres.WithLogger(cfg.Logger), postgres.WithRebuildBatchSize(cfg.RebuildBatchSize))
		rebuild := func(ctx context.Context, progress func(done, total int64, rate float64)) error {
			return model.Rebuild(ctx, nil, progress)
		}
		return projectiontest.Backend{Store: store, Model: model, Rebuild: rebuild}
	})
}
