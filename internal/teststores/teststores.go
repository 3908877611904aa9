// Package teststores gives tests an event store and a blob store of their
// own, migrated and closed when the test ends: on a fresh PostgreSQL
// schema (skipping the test when TEST_DATABASE_URL is unset, see pgtest)
// or on SQLite and files in a temporary directory, as the embedded
// default keeps them.
package teststores

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	blobfs "github.com/imageservice/imageservice/blobstore/fs"
	blobpg "github.com/imageservice/imageservice/blobstore/postgres"
	espg "github.com/imageservice/imageservice/eventstore/postgres"
	essqlite "github.com/imageservice/imageservice/eventstore/sqlite"
	"github.com/imageservice/imageservice/internal/pgtest"
)

// Postgres is an event store and a blob store on one fresh schema.
type Postgres struct {
	// Pool connects to the schema, for the tables of other components.
	Pool  *pgxpool.Pool
	Store *espg.Store
	Blobs *blobpg.Store
}

// NewPostgres migrates a fresh schema for the event and blob stores and
// opens them with opts.
func NewPostgres(t testing.TB, opts espg.Options) Postgres {
	t.Helper()
	ctx := context.Background()
	pool := pgtest.Pool(t)
	if err := espg.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	if err := blobpg.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	store := espg.Open(pool, opts)
	t.Cleanup(store.Close)
	return Postgres{Pool: pool, Store: store, Blobs: blobpg.New(pool)}
}

// SQLite is an event store in a SQLite file and a blob store of files,
// under Dir.
type SQLite struct {
	Dir   string
	Store *essqlite.Store
	Blobs *blobfs.Store
}

// NewSQLite opens both stores under a temporary directory.
func NewSQLite(t testing.TB) SQLite {
	t.Helper()
	dir := t.TempDir()
	store, err := essqlite.Open(context.Background(), filepath.Join(dir, "events.db"), essqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	blobs, err := blobfs.New(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	return SQLite{Dir: dir, Store: store, Blobs: blobs}
}
