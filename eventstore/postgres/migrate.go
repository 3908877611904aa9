package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/imageservice/imageservice/internal/pgmigrate"
)

// MigrationTable is the goose version table of the event store's schema.
const MigrationTable = "eventstore_migrations"

var migrationSet = pgmigrate.Set{Name: "event store", Table: MigrationTable, FS: pgmigrate.Sub(migrations, "migrations")}

// Migrate applies the event store's embedded migrations to the pool's
// current schema (the first existing schema of its search_path).
// Concurrent callers are serialised by an advisory lock, so every replica
// may migrate at start-up. It then gives the events table planner
// statistics if it has rows and none (see analyzeSQL).
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	if err := migrationSet.Up(ctx, pool); err != nil {
		return err
	}
	if _, err := pool.Exec(ctx, analyzeSQL); err != nil {
		return fmt.Errorf("analyze the events table: %w", err)
	}
	return nil
}

// analyzeSQL analyzes the events table when it holds rows but no
// statistics: a table restored from a dump, or filled with a backlog
// before autovacuum's first look. Without statistics the planner may read
// each page of ReadAll by sorting the whole rest of the log instead of
// walking events_transaction_position, which makes catching up quadratic.
const analyzeSQL = `DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM events LIMIT 1) AND NOT EXISTS (
        SELECT 1 FROM pg_stats WHERE schemaname = current_schema() AND tablename = 'events'
    ) THEN
        ANALYZE events;
    END IF;
END $$`

// Pending reports whether migrations remain to be applied; readiness
// checks use it.
func Pending(ctx context.Context, pool *pgxpool.Pool) (bool, error) {
	return migrationSet.Pending(ctx, pool)
}
