package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/imageservice/imageservice/eventstore"
)

// Checkpoint implements eventstore.Store.
func (s *Store) Checkpoint(ctx context.Context, key eventstore.CheckpointKey) (eventstore.Position, error) {
	var pos eventstore.Position
	var txid int64
	err := s.readers.QueryRowContext(ctx, `SELECT transaction_id, global_position FROM checkpoints
WHERE subscription = ? AND partition = ?`, key.Subscription, key.Partition).Scan(&txid, &pos.Global)
	if errors.Is(err, sql.ErrNoRows) {
		return eventstore.Position{}, nil
	}
	if err != nil {
		return eventstore.Position{}, fmt.Errorf("load checkpoint %s: %w", key, err)
	}
	pos.TransactionID = uint64(txid)
	return pos, nil
}

// saveCheckpointSQL writes a checkpoint; with a non-zero epoch only while
// that epoch holds the lease. Writes are serialised, so a takeover either
// commits before (and the write finds the epoch changed) or after (and
// the new holder reads the checkpoint).
const saveCheckpointSQL = `INSERT INTO checkpoints (subscription, partition, transaction_id, global_position, updated_at)
SELECT ?1, ?2, ?3, ?4, ?6
WHERE ?5 = 0 OR EXISTS (SELECT 1 FROM leases WHERE subscription = ?1 AND partition = ?2 AND epoch = ?5)
ON CONFLICT (subscription, partition) DO UPDATE
SET transaction_id = excluded.transaction_id, global_position = excluded.global_position, updated_at = excluded.updated_at`

// SaveCheckpoint implements eventstore.Store.
func (s *Store) SaveCheckpoint(ctx context.Context, key eventstore.CheckpointKey, epoch int64, pos eventstore.Position) error {
	cp := eventstore.Checkpoint{Key: key, Epoch: epoch, Position: pos}
	return s.inTx(ctx, func(tx *sql.Tx) error { return saveCheckpoint(ctx, s.wrap(tx), cp) })
}

// SaveCheckpointTx stores a subscription's checkpoint in a write
// transaction of InTx, for handlers whose writes must commit with it (set
// Subscription.HandlerSavesCheckpoint). It returns ErrLeaseLost when the
// checkpoint's lease epoch is no longer current: return the error so that
// InTx rolls back.
func (s *Store) SaveCheckpointTx(ctx context.Context, tx *sql.Tx, cp eventstore.Checkpoint) error {
	return saveCheckpoint(ctx, s.wrap(tx), cp)
}

func saveCheckpoint(ctx context.Context, tx writeTx, cp eventstore.Checkpoint) error {
	res, err := tx.exec(ctx, saveCheckpointSQL, cp.Key.Subscription, cp.Key.Partition,
		int64(cp.Position.TransactionID), cp.Position.Global, cp.Epoch, time.Now().UnixNano())
	if err != nil {
		return fmt.Errorf("save checkpoint %s: %w", cp.Key, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("save checkpoint %s: %w", cp.Key, err)
	}
	if n == 0 {
		return fmt.Errorf("save checkpoint %s at epoch %d: %w", cp.Key, cp.Epoch, eventstore.ErrLeaseLost)
	}
	return nil
}

// AcquireLease implements eventstore.Store. Lease times come from this
// process's clock; see the package documentation.
func (s *Store) AcquireLease(ctx context.Context, key eventstore.CheckpointKey, holder string, ttl time.Duration) (eventstore.Lease, error) {
	l := eventstore.Lease{Key: key, Holder: holder}
	now := time.Now()
	var expires int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, `INSERT INTO leases (subscription, partition, holder, epoch, expires_at)
VALUES (?1, ?2, ?3, 1, ?4)
ON CONFLICT (subscription, partition) DO UPDATE
SET holder = excluded.holder, epoch = leases.epoch + 1, expires_at = excluded.expires_at
WHERE leases.expires_at <= ?5
RETURNING epoch, expires_at`, key.Subscription, key.Partition, holder, now.Add(ttl).UnixNano(), now.UnixNano()).
			Scan(&l.Epoch, &expires)
	})
	if errors.Is(err, sql.ErrNoRows) {
		return eventstore.Lease{}, fmt.Errorf("acquire lease %s: %w", key, eventstore.ErrLeaseHeld)
	}
	if err != nil {
		return eventstore.Lease{}, fmt.Errorf("acquire lease %s: %w", key, err)
	}
	l.ExpiresAt = fromNanos(expires)
	return l, nil
}

// RenewLease implements eventstore.Store.
func (s *Store) RenewLease(ctx context.Context, lease eventstore.Lease, ttl time.Duration) (eventstore.Lease, error) {
	now := time.Now()
	var expires int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, `UPDATE leases SET expires_at = ?5
WHERE subscription = ?1 AND partition = ?2 AND holder = ?3 AND epoch = ?4 AND expires_at > ?6
RETURNING expires_at`, lease.Key.Subscription, lease.Key.Partition, lease.Holder, lease.Epoch,
			now.Add(ttl).UnixNano(), now.UnixNano()).Scan(&expires)
	})
	if errors.Is(err, sql.ErrNoRows) {
		return eventstore.Lease{}, fmt.Errorf("renew lease %s: %w", lease.Key, eventstore.ErrLeaseLost)
	}
	if err != nil {
		return eventstore.Lease{}, fmt.Errorf("renew lease %s: %w", lease.Key, err)
	}
	lease.ExpiresAt = fromNanos(expires)
	return lease, nil
}

// ReleaseLease implements eventstore.Store.
func (s *Store) ReleaseLease(ctx context.Context, lease eventstore.Lease) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE leases SET expires_at = ?5
WHERE subscription = ?1 AND partition = ?2 AND holder = ?3 AND epoch = ?4`,
			lease.Key.Subscription, lease.Key.Partition, lease.Holder, lease.Epoch, int64(math.MinInt64))
		return err
	})
	if err != nil {
		return fmt.Errorf("release lease %s: %w", lease.Key, err)
	}
	return nil
}
