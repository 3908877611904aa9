// Package pgmigrate applies a component's numbered SQL migrations,
// embedded in the binary, to the current schema of a PostgreSQL pool with
// goose. Each component keeps its own version table, and concurrent
// migrations of one schema are serialised by an advisory lock derived
// from the component and the schema, so replicas may all migrate at
// start-up and test schemas migrate in parallel.
package pgmigrate

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

// Set is one component's migrations.
type Set struct {
	// Name names the component in errors, e.g. "event store".
	Name string
	// Table is the component's goose version table.
	Table string
	// FS holds the numbered .sql files at its root.
	FS fs.FS
}

// Up applies every pending migration.
func (s Set) Up(ctx context.Context, pool *pgxpool.Pool) error {
	p, err := s.provider(ctx, pool)
	if err != nil {
		return fmt.Errorf("migrate %s: %w", s.Name, err)
	}
	defer p.Close()
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrate %s: %w", s.Name, err)
	}
	return nil
}

// Pending reports whether migrations remain to be applied.
func (s Set) Pending(ctx context.Context, pool *pgxpool.Pool) (bool, error) {
	p, err := s.provider(ctx, pool)
	if err != nil {
		return false, fmt.Errorf("check %s migrations: %w", s.Name, err)
	}
	defer p.Close()
	pending, err := p.HasPending(ctx)
	if err != nil {
		return false, fmt.Errorf("check %s migrations: %w", s.Name, err)
	}
	return pending, nil
}

// provider returns a goose provider on the pool; closing it closes its
// database handle, not the pool.
func (s Set) provider(ctx context.Context, pool *pgxpool.Pool) (*goose.Provider, error) {
	var schema *string
	if err := pool.QueryRow(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		return nil, fmt.Errorf("current schema: %w", err)
	}
	if schema == nil {
		return nil, errors.New("no existing schema in search_path")
	}
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockID(s.lockID(*schema)), lock.WithLockTimeout(1, 600))
	if err != nil {
		return nil, err
	}
	db := stdlib.OpenDBFromPool(pool)
	p, err := goose.NewProvider(goose.DialectPostgres, db, s.FS,
		goose.WithTableName(s.Table), goose.WithSessionLocker(locker), goose.WithDisableGlobalRegistry(true))
	if err != nil {
		db.Close()
		return nil, err
	}
	return p, nil
}

// lockID derives the advisory lock id of the set's migrations in a schema.
func (s Set) lockID(schema string) int64 {
	h := fnv.New64a()
	h.Write([]byte("imageservice/" + s.Table + "/" + schema))
	return int64(h.Sum64())
}

// Sub returns the directory dir of fsys, for embedded migration folders.
func Sub(fsys fs.FS, dir string) fs.FS {
	sub, err := fs.Sub(fsys, dir)
	if err != nil {
		panic(fmt.Sprintf("pgmigrate: %v", err)) // dir is a constant of the caller
	}
	return sub
}
