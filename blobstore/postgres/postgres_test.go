package postgres_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/imageservice/imageservice/blobstore"
	"github.com/imageservice/imageservice/blobstore/blobtest"
	blobpg "github.com/imageservice/imageservice/blobstore/postgres"
	"github.com/imageservice/imageservice/internal/pgtest"
)

// freshPool returns a migrated pool on a schema of its own.
func freshPool(t *testing.T) *pgxpool.Pool {
	t.Helper()
	pool := pgtest.Pool(t)
	if err := blobpg.Migrate(context.Background(), pool); err != nil {
		t.Fatal(err)
	}
	return pool
}

func TestConformance(t *testing.T) {
	blobtest.Exercise(t, func(t *testing.T) blobtest.Store {
		return blobpg.New(freshPool(t))
	})
}

func TestMigrate(t *testing.T) {
	t.Parallel()
	pool := freshPool(t)
	ctx := context.Background()
	// Idempotent, also when run concurrently.
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range errs {
		wg.Go(func() { errs[i] = blobpg.Migrate(ctx, pool) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatalf("migrate again: %v", err)
		}
	}
	var tables []string
	rows, err := pool.Query(ctx, `SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	tables, err = pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if len(tables) != 2 || tables[0] != "blobs" || tables[1] != blobpg.VersionTable {
		t.Fatalf("tables %v", tables)
	}
}

func TestMigrateNoSchema(t *testing.T) {
	url, _ := pgtest.URL(t)
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = "does_not_exist_anywhere"
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if err := blobpg.Migrate(context.Background(), pool); err == nil {
		t.Fatal("migrate without schema succeeded")
	}
}

func TestPutTx(t *testing.T) {
	t.Parallel()
	pool := freshPool(t)
	s := blobpg.New(pool)
	ctx := context.Background()

	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.PutTx(ctx, tx, "image/png", []byte("rolled back"))
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Stat(ctx, b.Key); !errors.Is(err, blobstore.ErrNotFound) {
		t.Fatalf("rolled-back blob visible: %v", err)
	}

	tx, err = pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b, err = s.PutTx(ctx, tx, "image/png", []byte("committed"))
	if err != nil {
		t.Fatal(err)
	}
	// Same content again in the same transaction: no error, same blob.
	again, err := s.PutTx(ctx, tx, "image/gif", []byte("committed"))
	if err != nil || again.Key != b.Key || again.ContentType != "image/png" {
		t.Fatalf("second PutTx = %+v, %v", again, err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if st, err := s.Stat(ctx, b.Key); err != nil || st.Size != int64(len("committed")) {
		t.Fatalf("committed blob: %+v, %v", st, err)
	}
}

// TestPutTxConcurrent stores the same content from two open transactions: the
// second waits for the first and then sees its row.
func TestPutTxConcurrent(t *testing.T) {
	t.Parallel()
	pool := freshPool(t)
	s := blobpg.New(pool)
	ctx := context.Background()
	data := []byte("contended")

	tx1, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx1.Rollback(ctx)
	first, err := s.PutTx(ctx, tx1, "image/png", data)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		tx2, err := pool.Begin(ctx)
		if err != nil {
			done <- err
			return
		}
		defer tx2.Rollback(ctx)
		b, err := s.PutTx(ctx, tx2, "image/gif", data)
		if err == nil && (b.Key != first.Key || b.ContentType != "image/png") {
			err = errors.New("second transaction did not see the first's blob")
		}
		if err == nil {
			err = tx2.Commit(ctx)
		}
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("second put did not wait for the first transaction: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	if err := tx1.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestMaxSize(t *testing.T) {
	t.Parallel()
	pool := freshPool(t)
	s := blobpg.New(pool, blobpg.WithMaxSize(10))
	ctx := context.Background()
	if _, err := s.Put(ctx, "", bytes.NewReader(make([]byte, 11))); !errors.Is(err, blobstore.ErrTooLarge) {
		t.Fatalf("Put over limit: %v", err)
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := s.PutTx(ctx, tx, "", make([]byte, 11)); !errors.Is(err, blobstore.ErrTooLarge) {
		t.Fatalf("PutTx over limit: %v", err)
	}
	if _, err := s.Put(ctx, "", bytes.NewReader(make([]byte, 10))); err != nil {
		t.Fatalf("Put at limit: %v", err)
	}
}

// TestChunkedRead reads a blob larger than one chunk through Seek, Read and
// ReadAt across chunk boundaries.
func TestChunkedRead(t *testing.T) {
	t.Parallel()
	s := blobpg.New(freshPool(t))
	ctx := context.Background()
	data := make([]byte, 3<<20+12345)
	_, _ = rand.Read(data)
	b, err := s.Put(ctx, "image/png", bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	r, _, err := s.Open(ctx, b.Key)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for _, tc := range []struct{ off, n int64 }{{0, 10}, {1<<20 - 5, 10}, {2<<20 - 1, 1<<20 + 2}, {int64(len(data)) - 7, 7}} {
		buf := make([]byte, tc.n)
		if _, err := r.ReadAt(buf, tc.off); err != nil && !errors.Is(err, io.EOF) {
			t.Fatalf("ReadAt(%d, %d): %v", tc.off, tc.n, err)
		}
		if !bytes.Equal(buf, data[tc.off:tc.off+tc.n]) {
			t.Fatalf("ReadAt(%d, %d) differs", tc.off, tc.n)
		}
	}
	if n, err := r.ReadAt(make([]byte, 10), int64(len(data))-3); n != 3 || !errors.Is(err, io.EOF) {
		t.Fatalf("ReadAt past end = %d, %v", n, err)
	}
	if _, err := r.Seek(1<<20+100, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	rest, err := io.ReadAll(r)
	if err != nil || !bytes.Equal(rest, data[1<<20+100:]) {
		t.Fatalf("read after seek: %d bytes, %v", len(rest), err)
	}
	// A blob deleted while open reports not found on the next chunk.
	r2, _, err := s.Open(ctx, b.Key)
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	if err := s.Delete(ctx, b.Key); err != nil {
		t.Fatal(err)
	}
	if _, err := r2.Read(make([]byte, 10)); !errors.Is(err, blobstore.ErrNotFound) {
		t.Fatalf("read deleted blob: %v", err)
	}
}
