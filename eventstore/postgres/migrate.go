package postgres

import (
	"context"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/imageservice/imageservice/internal/pgmigrate"
)

// MigrationTable is the goose version table of the event store's schema.
const MigrationTable = "eventstore_migrations"

var migrationSet = pgmigrate.Set{Name: "event store", Table: MigrationTable, FS: pgmigrate.Sub(migrations, "migrations")}

// Migrate applies the event store's embedded migrations to the pool's
// current schema (the first existing schema of its search_path).
// Concurrent callers are serialised by an advisory lock, so every replica
// may migrate at start-up.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error { return migrationSet.Up(ctx, pool) }

// Pending reports whether migrations remain to be applied; readiness
// checks use it.
func Pending(ctx context.Context, pool *pgxpool.Pool) (bool, error) {
	return migrationSet.Pending(ctx, pool)
}
