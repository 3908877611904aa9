package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"

	"github.com/pressly/goose/v3"
)

//go:embed migrations/*.sql
var migrations embed.FS

// MigrationTable is the goose version table of the event store's schema.
const MigrationTable = "eventstore_migrations"

// Migrate applies the event store's embedded migrations to the database
// file at path, creating it if needed. Open migrates by itself; Migrate is
// for the migrate command.
func Migrate(ctx context.Context, path string) error {
	return withMigrationDB(ctx, path, func(db *sql.DB) error { return migrateDB(ctx, db) })
}

// Pending reports whether migrations remain to be applied to the database
// file at path; readiness checks use it.
func Pending(ctx context.Context, path string) (bool, error) {
	var pending bool
	err := withMigrationDB(ctx, path, func(db *sql.DB) error {
		p, err := provider(db)
		if err != nil {
			return err
		}
		pending, err = p.HasPending(ctx)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("check event store migrations: %w", err)
	}
	return pending, nil
}

// withMigrationDB runs fn on the single writer connection of the file.
func withMigrationDB(ctx context.Context, path string, fn func(db *sql.DB) error) error {
	opts, _ := Options{}.withDefaults()
	db, err := openWriter(ctx, path, opts)
	if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	defer db.Close()
	return fn(db)
}

// migrateDB applies every pending migration on db.
func migrateDB(ctx context.Context, db *sql.DB) error {
	p, err := provider(db)
	if err != nil {
		return fmt.Errorf("migrate event store: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrate event store: %w", err)
	}
	return nil
}

// provider returns a goose provider of the embedded migrations on db. It
// is not closed: closing it would close db, which stays the caller's.
func provider(db *sql.DB) (*goose.Provider, error) {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return nil, err
	}
	return goose.NewProvider(goose.DialectSQLite3, db, sub,
		goose.WithTableName(MigrationTable), goose.WithDisableGlobalRegistry(true))
}
