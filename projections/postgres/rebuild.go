package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/imageservice/imageservice/eventstore"
)

// rebuildHolderPrefix marks the lease holders that are rebuilds: a rebuild
// takes the lease over from a live projector, never from another rebuild.
const rebuildHolderPrefix = "rebuild:"

// Rebuild replays the whole log into a fresh read model and swaps it in,
// without ever serving a half-built model:
//
//  1. It takes the projection's lease. A live projector holding it is
//     preempted (the lease's epoch moves on, which fences its checkpoint
//     writes, so it stops writing and waits for the lease); another
//     rebuild holding it is waited for. The lease is kept throughout by
//     an eventstore.LeaseKeeper, on the terms of eventstore.Runner's: it
//     is renewed every third of its TTL, a failed renewal is retried
//     after a short back-off, and the rebuild stops, with an error that
//     wraps eventstore.ErrLeaseLost, when a renewal is refused or when
//     the lease's local deadline (nine tenths of the TTL after the last
//     renewal that got through was sent) passes without one: it writes
//     no batch and does not swap after that, before another replica can
//     take the lease over.
//  2. It replays the log into shadow tables (image_view_next,
//     dither_view_next) while queries keep reading the old model.
//  3. In one transaction it swaps the shadow tables in by renames and
//     stores the checkpoint at the last position replayed.
//  4. It releases the lease, so the live projector resumes from there.
//
// runner supplies the lease holder name, TTL and OnLease (nil: the
// defaults of eventstore.Runner). progress, when not nil, is called after
// every batch with the events replayed, the estimated total and the rate
// in events per second, and once at the end with done == total.
func (m *ReadModel) Rebuild(ctx context.Context, runner *eventstore.Runner, progress func(done, total int64, rate float64)) error {
	holder, ttl := rebuildLeaseParams(runner)
	lease, sent, err := m.takeLease(ctx, holder, ttl)
	if err != nil {
		return fmt.Errorf("rebuild %s: %w", m.name, err)
	}
	m.log.Info("projections: rebuild started", "projection", m.name, "epoch", lease.Epoch)
	keeper := eventstore.LeaseKeeper{Store: m.store, TTL: ttl, Logger: m.log}
	if runner != nil {
		keeper.OnLease = runner.OnLease
	}
	leaseCtx, kept := keeper.Keep(ctx, lease, sent)
	err = m.rebuild(leaseCtx, kept, progress)
	// A rebuild that failed because its lease was lost says so; one
	// that swapped its model in did so under the lease, fenced by it.
	if lost := kept.Stop(err); lost != nil && err != nil {
		err = lost
	}
	relCtx, relCancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer relCancel()
	if rerr := m.store.ReleaseLease(relCtx, kept.Lease()); rerr != nil {
		m.log.Warn("projections: release rebuild lease", "projection", m.name, "err", rerr)
	}
	if err != nil {
		return fmt.Errorf("rebuild %s: %w", m.name, err)
	}
	return nil
}

// rebuildLeaseParams returns the lease holder and TTL of a rebuild.
func rebuildLeaseParams(runner *eventstore.Runner) (string, time.Duration) {
	holder, ttl := "", 15*time.Second
	if runner != nil {
		holder = runner.Holder
		if runner.LeaseTTL > 0 {
			ttl = runner.LeaseTTL
		}
	}
	if holder == "" {
		holder = eventstore.DefaultHolder()
	}
	return rebuildHolderPrefix + holder, ttl
}

// rebuild replays the log into the shadow tables and swaps them in, while
// it holds the kept lease: it checks the lease before each batch and
// before the swap.
func (m *ReadModel) rebuild(ctx context.Context, kept *eventstore.KeptLease, progress func(done, total int64, rate float64)) error {
	if progress == nil {
		progress = func(int64, int64, float64) {}
	}
	if err := m.createShadow(ctx); err != nil {
		return err
	}
	head, _, err := m.store.Head(ctx)
	if err != nil {
		return fmt.Errorf("read head of the log: %w", err)
	}
	start := time.Now()
	rate := func(done int64) float64 { return float64(done) / max(time.Since(start).Seconds(), 1e-9) }
	var pos eventstore.Position
	var done int64
	for {
		events, err := m.store.ReadAll(ctx, pos, m.rebuildBatch)
		if err != nil {
			return fmt.Errorf("read the log after %s: %w", pos, err)
		}
		if len(events) > 0 {
			if err := kept.Err(); err != nil {
				return fmt.Errorf("replay %d events after %s: %w", len(events), pos, err)
			}
			if err := pgx.BeginFunc(ctx, m.pool, func(tx pgx.Tx) error {
				return m.apply(ctx, tx, shadowTables, events)
			}); err != nil {
				return fmt.Errorf("replay %d events after %s: %w", len(events), pos, err)
			}
			pos, done = events[len(events)-1].Position, done+int64(len(events))
			progress(done, max(head.Global, done), rate(done))
		}
		if len(events) < m.rebuildBatch {
			break
		}
	}
	if err := kept.Err(); err != nil {
		return fmt.Errorf("swap in the rebuilt model at %s: %w", pos, err)
	}
	if err := m.swap(ctx, kept.Lease(), pos); err != nil {
		return err
	}
	progress(done, done, rate(done))
	m.log.Info("projections: rebuild done", "projection", m.name, "events", done,
		"position", pos.String(), "elapsed", time.Since(start).Round(time.Millisecond))
	return nil
}

// createShadow makes empty copies of the live tables, dropping the
// leftovers of an interrupted rebuild.
func (m *ReadModel) createShadow(ctx context.Context) error {
	_, err := m.pool.Exec(ctx, `DROP TABLE IF EXISTS image_view_next, dither_view_next;
CREATE TABLE image_view_next (LIKE image_view INCLUDING ALL);
CREATE TABLE dither_view_next (LIKE dither_view INCLUDING ALL);`)
	if err != nil {
		return fmt.Errorf("create shadow tables: %w", err)
	}
	return nil
}

// swap replaces the live tables by the shadow tables and stores the
// checkpoint, in one transaction fenced by the lease: readers see either
// the old model or the new one, each complete.
func (m *ReadModel) swap(ctx context.Context, lease eventstore.Lease, pos eventstore.Position) error {
	cp := eventstore.Checkpoint{Key: lease.Key, Epoch: lease.Epoch, Position: pos}
	err := pgx.BeginFunc(ctx, m.pool, func(tx pgx.Tx) error {
		if err := m.store.SaveCheckpointTx(ctx, tx, cp); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DROP TABLE image_view, dither_view;
ALTER TABLE image_view_next RENAME TO image_view;
ALTER TABLE dither_view_next RENAME TO dither_view;`); err != nil {
			return err
		}
		for _, t := range []string{"image_view", "dither_view"} {
			if err := renameIndexes(ctx, tx, t); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("swap in the rebuilt model at %s: %w", pos, err)
	}
	return nil
}

// renameIndexes gives the indexes of a table that was <table>_next the
// names they have in the migrations: "<table>_next_..." becomes
// "<table>_...", which also renames the constraints they back.
func renameIndexes(ctx context.Context, tx pgx.Tx, table string) error {
	rows, err := tx.Query(ctx, `SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
WHERE i.indrelid = $1::regclass`, table)
	if err != nil {
		return fmt.Errorf("list indexes of %s: %w", table, err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("list indexes of %s: %w", table, err)
	}
	for _, name := range names {
		rest, ok := strings.CutPrefix(name, table+"_next")
		if !ok {
			continue
		}
		sql := fmt.Sprintf("ALTER INDEX %s RENAME TO %s",
			pgx.Identifier{name}.Sanitize(), pgx.Identifier{table + rest}.Sanitize())
		if _, err := tx.Exec(ctx, sql); err != nil {
			return fmt.Errorf("rename index %s: %w", name, err)
		}
	}
	return nil
}

// takeLease acquires the projection's lease for a rebuild, preempting a
// live projector and waiting for another rebuild. It returns the lease
// and the local time taken before the call that granted it was sent.
func (m *ReadModel) takeLease(ctx context.Context, holder string, ttl time.Duration) (eventstore.Lease, time.Time, error) {
	delay := 50 * time.Millisecond
	for {
		sent := time.Now()
		lease, err := m.store.AcquireLease(ctx, m.key(), holder, ttl)
		if !errors.Is(err, eventstore.ErrLeaseHeld) {
			return lease, sent, err
		}
		sent = time.Now()
		lease, ok, err := m.preemptLease(ctx, holder, ttl)
		if err != nil || ok {
			return lease, sent, err
		}
		m.log.Info("projections: waiting for another rebuild to finish", "projection", m.name)
		select {
		case <-ctx.Done():
			return eventstore.Lease{}, time.Time{}, fmt.Errorf("wait for lease %s: %w", m.key(), ctx.Err())
		case <-time.After(delay):
		}
		delay = min(delay*2, time.Second)
	}
}

// preemptLease takes the lease from a holder that is not a rebuild,
// moving its epoch on so that the holder's fenced writes fail. The update
// waits for a projector transaction in flight, which holds the lease row
// FOR SHARE through its checkpoint write. It writes the event store's
// leases table directly: the Store interface has no preemption.
func (m *ReadModel) preemptLease(ctx context.Context, holder string, ttl time.Duration) (eventstore.Lease, bool, error) {
	l := eventstore.Lease{Key: m.key(), Holder: holder}
	err := m.pool.QueryRow(ctx, `UPDATE leases SET holder = $3, epoch = epoch + 1,
    expires_at = now() + make_interval(secs => $4)
WHERE subscription = $1 AND partition = $2 AND (holder NOT LIKE 'rebuild:%' OR expires_at <= now())
RETURNING epoch, expires_at`, l.Key.Subscription, l.Key.Partition, holder, ttl.Seconds()).Scan(&l.Epoch, &l.ExpiresAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return eventstore.Lease{}, false, nil
	}
	if err != nil {
		return eventstore.Lease{}, false, fmt.Errorf("preempt lease %s: %w", l.Key, err)
	}
	return l, true, nil
}
