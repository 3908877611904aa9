package sqlite_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/imageservice/imageservice/eventstore"
	"github.com/imageservice/imageservice/eventstore/sqlite"
	"github.com/imageservice/imageservice/eventstore/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Exercise(t, func(t *testing.T) storetest.Backend {
		appends := new(storetest.AppendLog)
		store := newStoreWith(t, sqlite.Options{ObserveAppend: appends.Observe})
		return storetest.Backend{Store: store, Begin: beginFunc(store), SerializesWriters: true, Appends: appends}
	})
}

// newStore returns a store on a fresh database file in t.TempDir. The
// conformance suite checks ordering and idempotency, not durability, so
// it runs with synchronous=NORMAL: an fsync per commit would make the
// 8,000-append case minutes long on a loaded CI machine.
func newStore(t testing.TB) *sqlite.Store { return newStoreWith(t, sqlite.Options{}) }

// newStoreWith is newStore with options (synchronous is NORMAL).
func newStoreWith(t testing.TB, opts sqlite.Options) *sqlite.Store {
	t.Helper()
	opts.Synchronous = "NORMAL"
	s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "events.db"), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return s
}

// beginFunc opens write transactions, which hold the single writer from
// the start.
func beginFunc(s *sqlite.Store) func(ctx context.Context) (storetest.Tx, error) {
	return func(ctx context.Context) (storetest.Tx, error) {
		tx, err := s.BeginForTest(ctx)
		if err != nil {
			return nil, err
		}
		return &sqliteTx{s: s, tx: tx}, nil
	}
}

type sqliteTx struct {
	s  *sqlite.Store
	tx *sql.Tx
}

func (x *sqliteTx) Append(ctx context.Context, stream string, expected eventstore.ExpectedVersion, events ...eventstore.NewEvent) (eventstore.AppendResult, error) {
	return x.s.AppendTx(ctx, x.tx, stream, expected, events...)
}

func (x *sqliteTx) Commit(context.Context) error {
	if err := x.tx.Commit(); err != nil {
		return err
	}
	x.s.NotifyForTest()
	return nil
}

func (x *sqliteTx) Rollback(context.Context) error { return x.tx.Rollback() }
