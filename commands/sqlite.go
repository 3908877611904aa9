package commands

import (
	"bytes"
	"context"
	"database/sql"

	"github.com/imageservice/imageservice/blobstore"
	"github.com/imageservice/imageservice/eventstore"
	"github.com/imageservice/imageservice/eventstore/sqlite"
)

// SQLite is the Backend of the embedded default: a SQLite event store and
// a blob store on the filesystem. Blobs cannot share the database's
// transaction, so an upload stores its bytes first and appends after: an
// append that fails leaves an unreferenced blob behind, which is harmless
// (blobs are content-addressed and a retry reuses it), and an event never
// refers to bytes that are not stored.
type SQLite struct {
	*sqlite.Store
	Blobs blobstore.Store
}

var _ Backend = SQLite{}

// InTx implements Backend.
func (s SQLite) InTx(ctx context.Context, fn func(tx Tx) error) error {
	return s.Store.InTx(ctx, func(tx *sql.Tx) error { return fn(sqliteTx{s, tx}) })
}

type sqliteTx struct {
	s  SQLite
	tx *sql.Tx
}

func (t sqliteTx) PutBlob(ctx context.Context, contentType string, data []byte) (blobstore.Blob, error) {
	return t.s.Blobs.Put(ctx, contentType, bytes.NewReader(data))
}

func (t sqliteTx) Append(ctx context.Context, stream string, expected eventstore.ExpectedVersion, events ...eventstore.NewEvent) (eventstore.AppendResult, error) {
	return t.s.Store.AppendTx(ctx, t.tx, stream, expected, events...)
}
