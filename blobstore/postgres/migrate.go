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

// VersionTable is the goose version table of the blob store's migrations,
// distinct from the event store's.
const VersionTable = "blobstore_migrations"

//go:embed migrations/*.sql
var migrations embed.FS

// Migrate applies the blob store's migrations in the pool's current schema
// (the first existing schema of its search_path). Concurrent callers on the
// same schema are serialised by an advisory lock derived from the schema
// name; different schemas migrate independently.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	provider, closeDB, err := newProvider(ctx, pool)
	if err != nil {
		return fmt.Errorf("migrate blob store: %w", err)
	}
	defer closeDB()
	if _, err := provider.Up(ctx); err != nil {
		return fmt.Errorf("migrate blob store: %w", err)
	}
	return nil
}

func newProvider(ctx context.Context, pool *pgxpool.Pool) (*goose.Provider, func(), error) {
	var schema *string
	if err := pool.QueryRow(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		return nil, nil, fmt.Errorf("current schema: %w", err)
	}
	if schema == nil {
		return nil, nil, errors.New("no existing schema in search_path")
	}
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockID(lockID(*schema)), lock.WithLockTimeout(1, 600))
	if err != nil {
		return nil, nil, err
	}
	fsys, err := iofs.Sub(migrations, "migrations")
	if err != nil {
		return nil, nil, err
	}
	db := stdlib.OpenDBFromPool(pool)
	p, err := goose.NewProvider(goose.DialectPostgres, db, fsys,
		goose.WithTableName(VersionTable), goose.WithSessionLocker(locker), goose.WithDisableGlobalRegistry(true))
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	return p, func() { db.Close() }, nil
}

// lockID derives the advisory lock id of migrations in one schema.
func lockID(schema string) int64 {
	h := fnv.New64a()
	h.Write([]byte("imageservice/blobstore/" + schema))
	return int64(h.Sum64())
}
