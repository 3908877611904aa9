package postgres

import (
	"context"
	"embed"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/imageservice/imageservice/internal/pgmigrate"
)

// VersionTable is the goose version table of the blob store's migrations,
// distinct from the event store's.
const VersionTable = "blobstore_migrations"

//go:embed migrations/*.sql
var migrations embed.FS

var migrationSet = pgmigrate.Set{Name: "blob store", Table: VersionTable, FS: pgmigrate.Sub(migrations, "migrations")}

// Migrate applies the embedded migrations in the pool's current schema
// (the first existing schema of its search_path). Concurrent callers on
// one schema are serialised by an advisory lock; different schemas migrate
// independently.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error { return migrationSet.Up(ctx, pool) }

// Pending reports whether migrations remain to be applied; readiness
// checks use it.
func Pending(ctx context.Context, pool *pgxpool.Pool) (bool, error) {
	return migrationSet.Pending(ctx, pool)
}
