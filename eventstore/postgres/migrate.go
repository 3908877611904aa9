package postgres

import (
	"context"
	"fmt"
	"io/fs"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

// MigrationTable is the goose version table of the event store's schema.
const MigrationTable = "eventstore_migrations"

// Migrate applies the event store's embedded migrations to the pool's
// database (in its search_path schema). Concurrent callers are
// serialised by a session lock, so every replica may migrate at start-up.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	p, err := provider(pool)
	if err != nil {
		return err
	}
	defer p.Close()
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrate event store: %w", err)
	}
	return nil
}

// Pending reports whether migrations remain to be applied; readiness
// checks use it.
func Pending(ctx context.Context, pool *pgxpool.Pool) (bool, error) {
	p, err := provider(pool)
	if err != nil {
		return false, err
	}
	defer p.Close()
	pending, err := p.HasPending(ctx)
	if err != nil {
		return false, fmt.Errorf("check event store migrations: %w", err)
	}
	return pending, nil
}

func provider(pool *pgxpool.Pool) (*goose.Provider, error) {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return nil, err
	}
	locker, err := lock.NewPostgresSessionLocker()
	if err != nil {
		return nil, err
	}
	db := stdlib.OpenDBFromPool(pool)
	p, err := goose.NewProvider(goose.DialectPostgres, db, sub,
		goose.WithTableName(MigrationTable), goose.WithSessionLocker(locker))
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("event store migrations: %w", err)
	}
	return p, nil
}
