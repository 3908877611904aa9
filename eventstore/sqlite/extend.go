package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"math"

	"github.com/pressly/goose/v3"

	"github.com/imageservice/imageservice/eventstore"
)

// Migrations is the goose migration set of a component that keeps its
// tables in the store's database file, such as a read model.
type Migrations struct {
	// Name describes the set in errors.
	Name string
	// Table is the set's goose version table, other than MigrationTable.
	Table string
	// FS holds the set's migration files at its root.
	FS fs.FS
}

// ApplyMigrations applies the pending migrations of m on the store's
// writer connection, so that they are serialised with every other write.
func (s *Store) ApplyMigrations(ctx context.Context, m Migrations) error {
	p, err := m.provider(s.writer)
	if err != nil {
		return fmt.Errorf("migrate %s: %w", m.Name, err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrate %s: %w", m.Name, err)
	}
	return nil
}

// PendingMigrations reports whether migrations of m remain to be applied;
// readiness checks use it.
func (s *Store) PendingMigrations(ctx context.Context, m Migrations) (bool, error) {
	p, err := m.provider(s.writer)
	if err != nil {
		return false, fmt.Errorf("check %s migrations: %w", m.Name, err)
	}
	pending, err := p.HasPending(ctx)
	if err != nil {
		return false, fmt.Errorf("check %s migrations: %w", m.Name, err)
	}
	return pending, nil
}

// provider returns a goose provider of the set on db; like provider, it
// is not closed, which would close db.
func (m Migrations) provider(db *sql.DB) (*goose.Provider, error) {
	if m.Table == "" || m.Table == MigrationTable || m.FS == nil {
		return nil, fmt.Errorf("migration set %q needs its own version table and files", m.Name)
	}
	return goose.NewProvider(goose.DialectSQLite3, db, m.FS,
		goose.WithTableName(m.Table), goose.WithDisableGlobalRegistry(true))
}

// TakeOverLeaseTx takes the lease of key for holder in a write
// transaction of InTx, whoever holds it: it moves the epoch on, so that
// the previous holder's fenced checkpoint writes and renewals fail with
// ErrLeaseLost from the commit on, and returns the lease, under whose
// epoch SaveCheckpointTx succeeds within tx. The lease is written as
// released: it is held for the rest of tx only, during which the single
// writer keeps every other lease and checkpoint write waiting; once tx
// commits, anyone may acquire it. For work that must exclude a
// subscription's holder within one transaction, such as a rebuild.
func (s *Store) TakeOverLeaseTx(ctx context.Context, tx *sql.Tx, key eventstore.CheckpointKey, holder string) (eventstore.Lease, error) {
	l := eventstore.Lease{Key: key, Holder: holder}
	var expires int64
	err := tx.QueryRowContext(ctx, `INSERT INTO leases (subscription, partition, holder, epoch, expires_at)
VALUES (?1, ?2, ?3, 1, ?4)
ON CONFLICT (subscription, partition) DO UPDATE
SET holder = excluded.holder, epoch = leases.epoch + 1, expires_at = excluded.expires_at
RETURNING epoch, expires_at`, key.Subscription, key.Partition, holder, int64(math.MinInt64)).Scan(&l.Epoch, &expires)
	if err != nil {
		return eventstore.Lease{}, fmt.Errorf("take over lease %s: %w", key, err)
	}
	l.ExpiresAt = fromNanos(expires)
	return l, nil
}
