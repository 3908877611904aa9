package sqlite

import (
	"context"
	"embed"
	"io/fs"

	essqlite "github.com/imageservice/imageservice/eventstore/sqlite"
)

// MigrationTable is the goose version table of the read models' schema,
// distinct from the event store's.
const MigrationTable = "projections_migrations"

//go:embed migrations/*.sql
var migrations embed.FS

// migrationSet returns the read models' migrations.
func migrationSet() essqlite.Migrations {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		panic(err) // the embedded directory exists
	}
	return essqlite.Migrations{Name: "read models", Table: MigrationTable, FS: sub}
}

// Migrate applies the read models' embedded migrations to the event
// store's database file, through the store's single writer.
func Migrate(ctx context.Context, store *essqlite.Store) error {
	return store.ApplyMigrations(ctx, migrationSet())
}

// Pending reports whether migrations remain to be applied; readiness
// checks use it.
func Pending(ctx context.Context, store *essqlite.Store) (bool, error) {
	return store.PendingMigrations(ctx, migrationSet())
}
