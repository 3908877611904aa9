// Package postgres is a blobstore.Store in PostgreSQL (pgx v5): one row per
// blob in the table "blobs" of the pool's search_path. PutTx stores bytes in
// the caller's transaction, so an upload's blob and its events commit
// together.
//
// It is also a blobstore.Purger, on the database's clock: every Put is one
// INSERT ... ON CONFLICT DO UPDATE that sets put_at to clock_timestamp(),
// and Purge is one DELETE ... WHERE put_at < putBefore. PostgreSQL runs
// the two atomically with respect to each other: a DELETE that meets a
// row touched by an uncommitted Put waits for it and tests put_at again
// on the new version, and an INSERT that meets a row being deleted waits,
// then inserts the content afresh. So a Put never "finds the blob there"
// while a purge removes it.
package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/imageservice/imageservice/blobstore"
)

// Store is a PostgreSQL blob store; it is safe for concurrent use.
type Store struct {
	pool    *pgxpool.Pool
	maxSize int64
}

// Option configures a Store.
type Option func(*Store)

// WithMaxSize sets the largest blob Put and PutTx accept (default
// blobstore.DefaultMaxSize).
func WithMaxSize(n int64) Option {
	return func(s *Store) {
		if n > 0 {
			s.maxSize = n
		}
	}
}

var (
	_ blobstore.Store  = (*Store)(nil)
	_ blobstore.Purger = (*Store)(nil)
)

// New returns a store using pool. Run Migrate first.
func New(pool *pgxpool.Pool, opts ...Option) *Store {
	s := &Store{pool: pool, maxSize: blobstore.DefaultMaxSize}
	for _, o := range opts {
		o(s)
	}
	return s
}

// querier is what put needs: a pool or a transaction.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Put implements blobstore.Store. The content is read into memory (up to the
// maximum size) to hash it before it is written.
func (s *Store) Put(ctx context.Context, contentType string, r io.Reader) (blobstore.Blob, error) {
	data, err := blobstore.ReadAll(r, s.maxSize)
	if err != nil {
		return blobstore.Blob{}, fmt.Errorf("put blob: %w", err)
	}
	return s.put(ctx, s.pool, contentType, data)
}

// PutTx stores data within tx: the blob becomes visible when tx commits and
// disappears if it rolls back. Content already stored is not written again,
// but its put time is updated in tx, whose lock on the row holds a
// concurrent Purge until tx ends.
func (s *Store) PutTx(ctx context.Context, tx pgx.Tx, contentType string, data []byte) (blobstore.Blob, error) {
	return s.put(ctx, tx, contentType, data)
}

func (s *Store) put(ctx context.Context, q querier, contentType string, data []byte) (blobstore.Blob, error) {
	if int64(len(data)) > s.maxSize {
		return blobstore.Blob{}, fmt.Errorf("put blob: %w: more than %d bytes", blobstore.ErrTooLarge, s.maxSize)
	}
	b := blobstore.Blob{Key: blobstore.KeyOf(data), Size: int64(len(data)), ContentType: blobstore.NormalizeContentType(contentType)}
	// The key is the content hash, so a conflicting row holds the same
	// bytes: only its put time changes, and its first content type and
	// creation time are returned. greatest() keeps put_at from going back
	// should the clock step back.
	err := q.QueryRow(ctx, `INSERT INTO blobs (key, content_type, size, data, put_at)
		VALUES ($1, $2, $3, $4, clock_timestamp())
		ON CONFLICT (key) DO UPDATE SET put_at = greatest(blobs.put_at, excluded.put_at)
		RETURNING content_type, created_at, put_at`,
		b.Key, b.ContentType, b.Size, data).Scan(&b.ContentType, &b.CreatedAt, &b.PutAt)
	if err != nil {
		return blobstore.Blob{}, fmt.Errorf("put blob %s: %w", b.Key, err)
	}
	return b, nil
}

// Stat implements blobstore.Store.
func (s *Store) Stat(ctx context.Context, key string) (blobstore.Blob, error) {
	if err := blobstore.CheckKey(key); err != nil {
		return blobstore.Blob{}, fmt.Errorf("stat blob: %w", err)
	}
	b, err := stat(ctx, s.pool, key)
	if err != nil {
		return blobstore.Blob{}, fmt.Errorf("stat blob: %w", err)
	}
	return b, nil
}

func stat(ctx context.Context, q querier, key string) (blobstore.Blob, error) {
	b := blobstore.Blob{Key: key}
	err := q.QueryRow(ctx, `SELECT content_type, size, created_at, put_at FROM blobs WHERE key = $1`, key).
		Scan(&b.ContentType, &b.Size, &b.CreatedAt, &b.PutAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return blobstore.Blob{}, fmt.Errorf("%s: %w", key, blobstore.ErrNotFound)
	}
	if err != nil {
		return blobstore.Blob{}, fmt.Errorf("%s: %w", key, err)
	}
	return b, nil
}

// Open implements blobstore.Store. Blobs up to 1 MiB are read whole; larger
// ones are read in 1 MiB chunks on demand, each chunk a query using ctx, so
// the reader must not outlive ctx.
func (s *Store) Open(ctx context.Context, key string) (blobstore.Reader, blobstore.Blob, error) {
	if err := blobstore.CheckKey(key); err != nil {
		return nil, blobstore.Blob{}, fmt.Errorf("open blob: %w", err)
	}
	b := blobstore.Blob{Key: key}
	var data []byte
	err := s.pool.QueryRow(ctx, `SELECT content_type, size, created_at, put_at,
		CASE WHEN size <= $2 THEN data END FROM blobs WHERE key = $1`, key, chunkSize).
		Scan(&b.ContentType, &b.Size, &b.CreatedAt, &b.PutAt, &data)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, blobstore.Blob{}, fmt.Errorf("open blob %s: %w", key, blobstore.ErrNotFound)
	}
	if err != nil {
		return nil, blobstore.Blob{}, fmt.Errorf("open blob %s: %w", key, err)
	}
	if b.Size > chunkSize {
		return &chunkReader{ctx: ctx, pool: s.pool, key: key, size: b.Size}, b, nil
	}
	return memReader{bytes.NewReader(data)}, b, nil
}

// Delete implements blobstore.Store.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := blobstore.CheckKey(key); err != nil {
		return fmt.Errorf("delete blob: %w", err)
	}
	if _, err := s.pool.Exec(ctx, `DELETE FROM blobs WHERE key = $1`, key); err != nil {
		return fmt.Errorf("delete blob %s: %w", key, err)
	}
	return nil
}

// Now implements blobstore.Purger: the database's clock_timestamp(), the
// clock Put records put times with.
func (s *Store) Now(ctx context.Context) (time.Time, error) {
	var now time.Time
	if err := s.pool.QueryRow(ctx, `SELECT clock_timestamp()`).Scan(&now); err != nil {
		return time.Time{}, fmt.Errorf("read the database clock: %w", err)
	}
	return now, nil
}

// Keys implements blobstore.Purger. The blobs have Key, Size and PutAt set.
func (s *Store) Keys(ctx context.Context, putBefore time.Time, after string, limit int) ([]blobstore.Blob, error) {
	rows, err := s.pool.Query(ctx, `SELECT key, size, put_at FROM blobs
		WHERE key > $1 AND put_at < $2 ORDER BY key LIMIT $3`, after, putBefore, max(limit, 0))
	if err != nil {
		return nil, fmt.Errorf("list blobs put before %s: %w", putBefore, err)
	}
	blobs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (blobstore.Blob, error) {
		var b blobstore.Blob
		err := row.Scan(&b.Key, &b.Size, &b.PutAt)
		return b, err
	})
	if err != nil {
		return nil, fmt.Errorf("list blobs put before %s: %w", putBefore, err)
	}
	return blobs, nil
}

// Purge implements blobstore.Purger with one conditional DELETE.
func (s *Store) Purge(ctx context.Context, key string, putBefore time.Time) (bool, error) {
	if err := blobstore.CheckKey(key); err != nil {
		return false, fmt.Errorf("purge blob: %w", err)
	}
	tag, err := s.pool.Exec(ctx, `DELETE FROM blobs WHERE key = $1 AND put_at < $2`, key, putBefore)
	if err != nil {
		return false, fmt.Errorf("purge blob %s: %w", key, err)
	}
	return tag.RowsAffected() == 1, nil
}

// memReader is a blobstore.Reader over bytes in memory.
type memReader struct{ *bytes.Reader }

// Close implements io.Closer; there is nothing to release.
func (memReader) Close() error { return nil }
