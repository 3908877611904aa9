// Package postgres is the PostgreSQL backend of the event store (pgx v5).
//
// # Ordering
//
// Global positions come from an identity column, so they are handed out
// when a transaction inserts and can commit out of order: reading "events
// after position n" would skip an event whose transaction commits late.
// Readers therefore order by (transaction_id, global_position) and read
// only rows with transaction_id < pg_snapshot_xmin(pg_current_snapshot()):
// every transaction below that horizon has finished, so nothing can later
// appear before the last row read. The checkpoint is that pair.
//
// A transaction that got its id early could still append the next version
// of a stream after a later transaction appended the previous one, which
// would put the versions out of order in the global order. The streams
// table's last_txid guard refuses such an append (ErrStreamOvertaken);
// Append retries it in a new transaction by itself.
//
// # Wake-ups
//
// Appends through this Store wake local readers at once. Other processes
// are told with NOTIFY, sent after the commit from a background goroutine
// (coalesced, so appends never wait for it or serialise on it), and heard
// by LISTEN on one dedicated connection that reconnects by itself. NOTIFY
// is only a hint: readers poll as well.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgxlisten"

	"github.com/imageservice/imageservice/eventstore"
)

//go:embed migrations/*.sql
var migrations embed.FS

// ErrStreamOvertaken is an append, inside a caller's transaction, to a
// stream that a later transaction has appended to since this transaction
// began. Roll back and retry in a new transaction.
var ErrStreamOvertaken = errors.New("eventstore: stream appended to by a later transaction; retry in a new transaction")

// Options configure a Store.
type Options struct {
	// Channel is the LISTEN/NOTIFY channel (default "eventstore"). Stores
	// that share a database but not a schema should use different ones.
	Channel string
	// Logger receives connection errors of the listener (default slog.Default()).
	Logger *slog.Logger
	// ObserveAppend, when set, is told of every Append and AppendTx.
	ObserveAppend eventstore.AppendObserver
}

// Store is the PostgreSQL event store. It is safe for concurrent use.
type Store struct {
	pool    *pgxpool.Pool
	opts    Options
	changed eventstore.Signal
	kick    chan struct{}
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

var _ eventstore.Store = (*Store)(nil)

// Open returns a Store on the pool's database, which must be migrated
// (see Migrate), and starts its listener. Close stops it; the pool stays
// the caller's.
func Open(pool *pgxpool.Pool, opts Options) *Store {
	if opts.Channel == "" {
		opts.Channel = "eventstore"
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Store{pool: pool, opts: opts, kick: make(chan struct{}, 1), cancel: cancel}
	s.wg.Go(func() { s.listen(ctx) })
	s.wg.Go(func() { s.notifyLoop(ctx) })
	return s
}

// Close stops the listener and the notifier.
func (s *Store) Close() {
	s.cancel()
	s.wg.Wait()
}

// Pool returns the store's connection pool, for read models and blobs that
// commit in the same transactions as events.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Changed implements eventstore.Store.
func (s *Store) Changed() <-chan struct{} { return s.changed.C() }

// committed wakes local readers and asks the notifier to tell other processes.
func (s *Store) committed() {
	s.changed.Notify()
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// notifyWindow is how long the notifier gathers commits into one NOTIFY.
// Sending one per commit would cost writers up to a third of their rate;
// this bounds NOTIFYs to a few hundred a second and adds at most this much
// to another process's wake-up.
const notifyWindow = 3 * time.Millisecond

// notifyLoop sends one NOTIFY per burst of commits.
func (s *Store) notifyLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.kick:
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(notifyWindow):
		}
		select {
		case <-s.kick: // commits during the window ride along
		default:
		}
		if _, err := s.pool.Exec(ctx, "SELECT pg_notify($1, '')", s.opts.Channel); err != nil && ctx.Err() == nil {
			s.opts.Logger.Warn("eventstore notify", "err", err)
		}
	}
}

// listen holds one connection that LISTENs for other processes' appends.
func (s *Store) listen(ctx context.Context) {
	l := &pgxlisten.Listener{
		Connect: func(ctx context.Context) (*pgx.Conn, error) {
			return pgx.ConnectConfig(ctx, s.pool.Config().ConnConfig.Copy())
		},
		LogError: func(ctx context.Context, err error) {
			if ctx.Err() == nil {
				s.opts.Logger.Warn("eventstore listener", "err", err)
			}
		},
		ReconnectDelay: time.Second,
	}
	l.Handle(s.opts.Channel, hint{s})
	_ = l.Listen(ctx)
}

// hint turns notifications, and reconnections (which may have missed
// some), into wake-ups.
type hint struct{ s *Store }

func (h hint) HandleNotification(context.Context, *pgconn.Notification, *pgx.Conn) error {
	h.s.changed.Notify()
	return nil
}

func (h hint) HandleBacklog(context.Context, string, *pgx.Conn) error {
	h.s.changed.Notify()
	return nil
}

// InTx runs fn in a transaction and commits it, then wakes readers. Use it
// to append events together with other writes (blobs, read models).
func (s *Store) InTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	if err := pgx.BeginFunc(ctx, s.pool, fn); err != nil {
		return err
	}
	s.committed()
	return nil
}

// translate maps the append function's errors to the package's errors.
func translate(stream string, expected eventstore.ExpectedVersion, err error) error {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return fmt.Errorf("append to %s: %w", stream, err)
	}
	switch pgErr.Code {
	case "ES001":
		var actual int64
		fmt.Sscan(pgErr.Detail, &actual)
		return &eventstore.VersionError{Stream: stream, Expected: expected, Actual: actual}
	case "ES002":
		return fmt.Errorf("append to %s: %w", stream, eventstore.ErrDuplicateEventID)
	case "ES003":
		return fmt.Errorf("append to %s: %w", stream, ErrStreamOvertaken)
	}
	return fmt.Errorf("append to %s: %w", stream, err)
}

// isUniqueEventID reports a race between two identical appends.
func isUniqueEventID(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505" && pgErr.ConstraintName == "events_event_id_key"
}
