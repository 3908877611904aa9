// Package sqlite is the SQLite backend of the event store: one database
// file in WAL mode, through the pure-Go driver modernc.org/sqlite. It is
// the embedded default, for a single process.
//
// # One writer
//
// Every write goes through one connection (a *sql.DB limited to one open
// connection, whose transactions begin with BEGIN IMMEDIATE), so writes
// are serialised in Go: a second writer waits for the connection, and
// honours its context while it waits. Reads use a separate pool of
// read-only connections, which WAL lets run while the writer writes.
//
// # Ordering
//
// Positions come from the events table's INTEGER PRIMARY KEY, assigned
// inside the write transaction. Only one write transaction exists at a
// time (SQLite's own write lock enforces this even across processes), so
// positions commit in the order they are handed out: when a reader sees
// position n, every position below n has committed or was rolled back and
// will never appear. Reading "events after position n" by global position
// alone therefore loses nothing, unlike on PostgreSQL. Every Position of
// this store has TransactionID 0, so eventstore.Position.Less orders them
// by global position; positions with another transaction id are not
// positions of this store, and ReadAll refuses them (ErrForeignPosition).
//
// # Durability
//
// The default is synchronous=FULL: each commit syncs the WAL before it
// returns, so an append that was acknowledged survives a power cut or an
// OS crash. Appends lead to side effects outside the database (Cloudinary,
// broker messages, replies to clients), and a log that forgets an event
// whose effects happened cannot be repaired by replaying it. NORMAL, which
// with WAL syncs only at checkpoints (committed data survives a process
// crash, but the last commits may be lost on power failure) is available
// in Options for development and tests.
//
// # Clock
//
// Lease expiry and recording times use this process's clock, stored as UTC
// unix nanoseconds. SQLite is embedded, so every holder of a lease runs on
// the same machine and reads the same clock; a wall-clock step backwards
// lengthens leases that are current by as much.
//
// # Wake-ups
//
// Changed is closed after every commit through this Store. Other processes
// writing the same file are not expected (SQLite is the single-process
// default) and are not signalled; readers poll, so they would still see
// such events, only later.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/imageservice/imageservice/eventstore"
)

// ErrForeignPosition is a read after a position with a non-zero
// transaction id, which no event of this store has.
var ErrForeignPosition = errors.New("eventstore: position with a transaction id is not a position of the SQLite store")

// Options configure a Store. The zero Options are the defaults.
type Options struct {
	// ReadConns is the size of the read-only connection pool (default 4).
	ReadConns int
	// BusyTimeout is how long a statement waits for a lock held by another
	// connection, such as another process's writer (default 5 s).
	BusyTimeout time.Duration
	// Synchronous is SQLite's synchronous setting: "FULL" (the default, an
	// acknowledged commit survives power loss) or "NORMAL" (faster; the
	// last commits may be lost on power loss, never on a process crash).
	Synchronous string
	// ObserveAppend, when set, is told of every Append and AppendTx.
	ObserveAppend eventstore.AppendObserver
}

func (o Options) withDefaults() (Options, error) {
	if o.ReadConns <= 0 {
		o.ReadConns = 4
	}
	if o.BusyTimeout <= 0 {
		o.BusyTimeout = 5 * time.Second
	}
	o.Synchronous = strings.ToUpper(o.Synchronous)
	switch o.Synchronous {
	case "":
		o.Synchronous = "FULL"
	case "FULL", "NORMAL":
	default:
		return o, fmt.Errorf("synchronous %q: want FULL or NORMAL", o.Synchronous)
	}
	return o, nil
}

// Store is the SQLite event store. It is safe for concurrent use.
type Store struct {
	writer  *sql.DB              // one connection: every write transaction
	stmts   map[string]*sql.Stmt // prepared on writer; see writeTx
	readers *sql.DB              // read-only connections
	changed eventstore.Signal
	observe eventstore.AppendObserver
}

var _ eventstore.Store = (*Store)(nil)

// Open opens (creating it if needed) the database file at path, applies
// the event store's migrations and returns a Store on it. Close it when
// done.
func Open(ctx context.Context, path string, opts Options) (*Store, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("open event store %s: %w", path, err)
	}
	writer, err := openWriter(ctx, path, opts)
	if err != nil {
		return nil, fmt.Errorf("open event store %s: %w", path, err)
	}
	if err := migrateDB(ctx, writer); err != nil {
		writer.Close()
		return nil, fmt.Errorf("open event store %s: %w", path, err)
	}
	stmts, err := prepare(ctx, writer)
	if err != nil {
		writer.Close()
		return nil, fmt.Errorf("open event store %s: %w", path, err)
	}
	readers, err := openReaders(ctx, path, opts)
	if err != nil {
		closeStmts(stmts)
		writer.Close()
		return nil, fmt.Errorf("open event store %s: %w", path, err)
	}
	return &Store{writer: writer, stmts: stmts, readers: readers, observe: opts.ObserveAppend}, nil
}

// Close closes the store's connections.
func (s *Store) Close() error {
	return errors.Join(closeStmts(s.stmts), s.readers.Close(), s.writer.Close())
}

// wrap gives a write transaction the prepared statements.
func (s *Store) wrap(tx *sql.Tx) writeTx { return writeTx{tx: tx, stmts: s.stmts} }

// ReadDB returns the store's pool of read-only connections, for queries of
// read models kept in the same file. Write through InTx.
func (s *Store) ReadDB() *sql.DB { return s.readers }

// Changed implements eventstore.Store.
func (s *Store) Changed() <-chan struct{} { return s.changed.C() }

// InTx runs fn in a write transaction and commits it, then wakes readers.
// Use it to append events (AppendTx) or store a checkpoint
// (SaveCheckpointTx) together with other writes to the same file. fn holds
// the only writer connection until it returns: it must not call the
// Store's own write methods (Append, SaveCheckpoint, leases), which would
// wait for that connection until ctx ends.
func (s *Store) InTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	if err := s.inTx(ctx, fn); err != nil {
		return err
	}
	s.changed.Notify()
	return nil
}

// inTx runs fn in a write transaction without waking readers.
func (s *Store) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.begin(ctx)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// begin starts a write transaction on the writer connection, waiting for
// it while another transaction holds it.
func (s *Store) begin(ctx context.Context) (*sql.Tx, error) {
	tx, err := s.writer.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("begin write transaction: %w", err)
	}
	return tx, nil
}

// openWriter opens the single writer connection and switches the file to WAL.
func openWriter(ctx context.Context, path string, opts Options) (*sql.DB, error) {
	db, err := sql.Open("sqlite", dsn(path, opts, "_txlock=immediate",
		"_pragma=journal_mode(WAL)", "_pragma=synchronous("+opts.Synchronous+")"))
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	var mode string
	if err := db.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		db.Close()
		return nil, fmt.Errorf("check journal mode: %w", err)
	}
	if !strings.EqualFold(mode, "wal") {
		db.Close()
		return nil, fmt.Errorf("journal mode is %q, WAL is required", mode)
	}
	return db, nil
}

// openReaders opens the read-only pool.
func openReaders(ctx context.Context, path string, opts Options) (*sql.DB, error) {
	db, err := sql.Open("sqlite", dsn(path, opts, "_pragma=query_only(1)"))
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(opts.ReadConns)
	db.SetMaxIdleConns(opts.ReadConns)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open read connection: %w", err)
	}
	return db, nil
}

// dsn builds the driver's data source name: a file: URI, so that a path
// holding '?' or '#' is not taken for parameters, with the connection
// settings every connection shares and the extra ones given.
func dsn(path string, opts Options, extra ...string) string {
	params := append([]string{
		fmt.Sprintf("_pragma=busy_timeout(%d)", opts.BusyTimeout.Milliseconds()),
		"_pragma=foreign_keys(1)",
	}, extra...)
	return "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + strings.Join(params, "&")
}
