package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"hash/fnv"
	iofs "io/fs"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

// MigrationTable is the goose version table of the read models' schema,
// distinct from the event store's and the blob store's.
const MigrationTable = "projections_migrations"

//go:embed migrations/*.sql
var migrations embed.FS

// Migrate applies the read models' embedded migrations in the pool's
// current schema (the first existing schema of its search_path).
// Concurrent callers on one schema are serialised by an advisory lock
// derived from the schema name; different schemas migrate independently.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	p, err := newProvider(ctx, pool)
	if err != nil {
		return fmt.Errorf("migrate read models: %w", err)
	}
	defer p.Close()
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrate read models: %w", err)
	}
	return nil
}

// Pending reports whether migrations remain to be applied; readiness
// checks use it.
func Pending(ctx context.Context, pool *pgxpool.Pool) (bool, error) {
	p, err := newProvider(ctx, pool)
	if err != nil {
		return false, fmt.Errorf("check read model migrations: %w", err)
	}
	defer p.Close()
	pending, err := p.HasPending(ctx)
	if err != nil {
		return false, fmt.Errorf("check read model migrations: %w", err)
	}
	return pending, nil
}

// newProvider returns a goose provider on the pool; closing it closes its
// database handle (not the pool).
func newProvider(ctx context.Context, pool *pgxpool.Pool) (*goose.Provider, error) {
	var schema *string
	if err := pool.QueryRow(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		return nil, fmt.Errorf("current schema: %w", err)
	}
	if schema == nil {
		return nil, errors.New("no existing schema in search_path")
	}
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockID(lockID(*schema)), lock.WithLockTimeout(1, 600))
	if err != nil {
		return nil, err
	}
	fsys, err := iofs.Sub(migrations, "migrations")
	if err != nil {
		return nil, err
	}
	db := stdlib.OpenDBFromPool(pool)
	p, err := goose.NewProvider(goose.DialectPostgres, db, fsys,
		goose.WithTableName(MigrationTable), goose.WithSessionLocker(locker), goose.WithDisableGlobalRegistry(true))
	if err != nil {
		db.Close()
		return nil, err
	}
	return p, nil
}

// lockID derives the advisory lock id of migrations in one schema.
func lockID(schema string) int64 {
	h := fnv.New64a()
	h.Write([]byte("imageservice/projections/" + schema))
	return int64(h.Sum64())
}
