package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/imageservice/imageservice/eventstore"
)

// Checkpoint implements eventstore.Store.
func (s *Store) Checkpoint(ctx context.Context, key eventstore.CheckpointKey) (eventstore.Position, error) {
	var pos eventstore.Position
	var txid int64
	err := s.pool.QueryRow(ctx, `SELECT transaction_id, global_position FROM checkpoints
WHERE subscription = $1 AND partition = $2`, key.Subscription, key.Partition).Scan(&txid, &pos.Global)
	if errors.Is(err, pgx.ErrNoRows) {
		return eventstore.Position{}, nil
	}
	if err != nil {
		return pos, fmt.Errorf("load checkpoint %s: %w", key, err)
	}
	pos.TransactionID = uint64(txid)
	return pos, nil
}

// saveCheckpointSQL writes a checkpoint; with a non-zero epoch only while
// that epoch holds the lease. FOR SHARE orders the write against a
// takeover: either the write commits first and the new holder reads it,
// or the takeover commits first and the write finds the epoch changed.
const saveCheckpointSQL = `WITH fence AS (
    SELECT 1 FROM leases WHERE subscription = $1 AND partition = $2 AND epoch = $5 FOR SHARE
)
INSERT INTO checkpoints (subscription, partition, transaction_id, global_position, updated_at)
SELECT $1, $2, $3, $4, now() WHERE $5 = 0 OR EXISTS (SELECT 1 FROM fence)
ON CONFLICT (subscription, partition) DO UPDATE
SET transaction_id = excluded.transaction_id, global_position = excluded.global_position, updated_at = now()`

// SaveCheckpoint implements eventstore.Store.
func (s *Store) SaveCheckpoint(ctx context.Context, key eventstore.CheckpointKey, epoch int64, pos eventstore.Position) error {
	return saveCheckpoint(ctx, s.pool, eventstore.Checkpoint{Key: key, Epoch: epoch, Position: pos})
}

// SaveCheckpointTx stores a subscription's checkpoint in the caller's
// transaction, for handlers whose writes must commit with it (set
// Subscription.HandlerSavesCheckpoint). It returns ErrLeaseLost when the
// checkpoint's lease epoch is no longer current: roll back.
func (s *Store) SaveCheckpointTx(ctx context.Context, tx pgx.Tx, cp eventstore.Checkpoint) error {
	return saveCheckpoint(ctx, tx, cp)
}

func saveCheckpoint(ctx context.Context, q querier, cp eventstore.Checkpoint) error {
	tag, err := q.Exec(ctx, saveCheckpointSQL, cp.Key.Subscription, cp.Key.Partition,
		int64(cp.Position.TransactionID), cp.Position.Global, cp.Epoch)
	if err != nil {
		return fmt.Errorf("save checkpoint %s: %w", cp.Key, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("save checkpoint %s at epoch %d: %w", cp.Key, cp.Epoch, eventstore.ErrLeaseLost)
	}
	return nil
}

// AcquireLease implements eventstore.Store. Lease times come from the
// database's clock, so replicas' clocks need not agree.
func (s *Store) AcquireLease(ctx context.Context, key eventstore.CheckpointKey, holder string, ttl time.Duration) (eventstore.Lease, error) {
	l := eventstore.Lease{Key: key, Holder: holder}
	err := s.pool.QueryRow(ctx, `INSERT INTO leases AS l (subscription, partition, holder, epoch, expires_at)
VALUES ($1, $2, $3, 1, now() + make_interval(secs => $4))
ON CONFLICT (subscription, partition) DO UPDATE
SET holder = excluded.holder, epoch = l.epoch + 1, expires_at = excluded.expires_at
WHERE l.expires_at <= now()
RETURNING epoch, expires_at`, key.Subscription, key.Partition, holder, ttl.Seconds()).Scan(&l.Epoch, &l.ExpiresAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return eventstore.Lease{}, fmt.Errorf("acquire lease %s: %w", key, eventstore.ErrLeaseHeld)
	}
	if err != nil {
		return eventstore.Lease{}, fmt.Errorf("acquire lease %s: %w", key, err)
	}
	return l, nil
}

// RenewLease implements eventstore.Store.
func (s *Store) RenewLease(ctx context.Context, lease eventstore.Lease, ttl time.Duration) (eventstore.Lease, error) {
	err := s.pool.QueryRow(ctx, `UPDATE leases SET expires_at = now() + make_interval(secs => $5)
WHERE subscription = $1 AND partition = $2 AND holder = $3 AND epoch = $4 AND expires_at > now()
RETURNING expires_at`, lease.Key.Subscription, lease.Key.Partition, lease.Holder, lease.Epoch, ttl.Seconds()).Scan(&lease.ExpiresAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return eventstore.Lease{}, fmt.Errorf("renew lease %s: %w", lease.Key, eventstore.ErrLeaseLost)
	}
	if err != nil {
		return eventstore.Lease{}, fmt.Errorf("renew lease %s: %w", lease.Key, err)
	}
	return lease, nil
}

// ReleaseLease implements eventstore.Store.
func (s *Store) ReleaseLease(ctx context.Context, lease eventstore.Lease) error {
	_, err := s.pool.Exec(ctx, `UPDATE leases SET expires_at = '-infinity'
WHERE subscription = $1 AND partition = $2 AND holder = $3 AND epoch = $4`,
		lease.Key.Subscription, lease.Key.Partition, lease.Holder, lease.Epoch)
	if err != nil {
		return fmt.Errorf("release lease %s: %w", lease.Key, err)
	}
	return nil
}
