package commands

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"

	"github.com/imageservice/imageservice/blobstore"
	blobpg "github.com/imageservice/imageservice/blobstore/postgres"
	"github.com/imageservice/imageservice/eventstore"
	espg "github.com/imageservice/imageservice/eventstore/postgres"
)

// Postgres is the Backend of a PostgreSQL event store and blob store on
// the same database, so that an upload's bytes and events commit together.
type Postgres struct {
	*espg.Store
	Blobs *blobpg.Store
}

var _ Backend = Postgres{}

// InTx implements Backend. An append that a later transaction overtook is
// tried again in a new transaction.
func (p Postgres) InTx(ctx context.Context, fn func(tx Tx) error) error {
	var err error
	for range maxAttempts {
		err = p.Store.InTx(ctx, func(tx pgx.Tx) error { return fn(pgTx{p, tx}) })
		if !errors.Is(err, espg.ErrStreamOvertaken) {
			return err
		}
	}
	return err
}

type pgTx struct {
	p  Postgres
	tx pgx.Tx
}

func (t pgTx) PutBlob(ctx context.Context, contentType string, data []byte) (blobstore.Blob, error) {
	return t.p.Blobs.PutTx(ctx, t.tx, contentType, data)
}

func (t pgTx) Append(ctx context.Context, stream string, expected eventstore.ExpectedVersion, events ...eventstore.NewEvent) (eventstore.AppendResult, error) {
	return t.p.Store.AppendTx(ctx, t.tx, stream, expected, events...)
}
