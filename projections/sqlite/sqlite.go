// Package sqlite keeps the image and dither read models of package
// projections in SQLite, in the database file of the event store of
// eventstore/sqlite. Migrate creates its tables.
//
// # Projecting
//
// The projector (Projector, or Run) is a leased subscription of the log.
// For each batch, in ONE write transaction on the store's single writer
// (Store.InTx), it stores the subscription's fenced checkpoint, loads the
// stored images.Image states of the batch's images in one query, folds
// the events in with images.Evolve (projections.ApplyBatch, the code the
// PostgreSQL read model runs too) and writes the denormalised image_view
// and dither_view rows and the states back. A batch is thus applied
// exactly once, and a projector that lost its lease cannot write. Events
// of other streams are ignored; events that cannot be decoded are logged
// and skipped, so they never wedge the projector.
//
// Queries run on the store's read-only connections (Store.ReadDB), which
// WAL lets read while the writer writes.
//
// # Reading your writes
//
// WaitFor blocks until the projection has applied the log up to a
// position, such as the last position of an append.
//
// # Rebuilding
//
// Rebuild empties the tables, replays the whole log into them and stores
// the checkpoint in ONE write transaction. In WAL mode readers keep
// seeing the last committed state until that transaction commits, so
// queries are served from the old, complete model throughout and switch
// to the new, complete one at the commit: a half-built model is never
// served. See Rebuild for how it keeps the projector out.
package sqlite

import (
	"log/slog"

	"github.com/imageservice/imageservice/eventstore"
	essqlite "github.com/imageservice/imageservice/eventstore/sqlite"
	"github.com/imageservice/imageservice/projections"
)

// DefaultName is the subscription name of the projector, which names its
// checkpoint and lease.
const DefaultName = "projections"

// ReadModel is the SQLite read model: it implements projections.Reader,
// projects the log into its tables and rebuilds them. It is safe for
// concurrent use.
type ReadModel struct {
	store *essqlite.Store
	name  string
	log   *slog.Logger
	// rebuildBatch is the number of events Rebuild reads at a time.
	rebuildBatch int
	// advanced is notified after each batch the projector commits here,
	// to wake WaitFor early.
	advanced eventstore.Signal
}

var (
	_ projections.Reader   = (*ReadModel)(nil)
	_ projections.BlobUser = (*ReadModel)(nil)
)

// Option configures a ReadModel.
type Option func(*ReadModel)

// WithName sets the subscription name of the projection (default
// DefaultName). The tables are the same whatever the name: it exists for
// tests and renames.
func WithName(name string) Option { return func(m *ReadModel) { m.name = name } }

// WithLogger sets the logger of skipped events and rebuilds (default
// slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(m *ReadModel) { m.log = l } }

// WithRebuildBatchSize sets how many events Rebuild reads and applies at
// a time (default 1000).
func WithRebuildBatchSize(n int) Option { return func(m *ReadModel) { m.rebuildBatch = n } }

// New returns the read model kept in the event store's database file
// (whose tables Migrate creates).
func New(store *essqlite.Store, opts ...Option) *ReadModel {
	m := &ReadModel{store: store, name: DefaultName, log: slog.Default(), rebuildBatch: 1000}
	for _, o := range opts {
		o(m)
	}
	if m.name == "" {
		m.name = DefaultName
	}
	if m.rebuildBatch <= 0 {
		m.rebuildBatch = 1000
	}
	if m.log == nil {
		m.log = slog.Default()
	}
	return m
}

// Name returns the projection's subscription name.
func (m *ReadModel) Name() string { return m.name }

// key is the checkpoint and lease key of the projection (one partition).
func (m *ReadModel) key() eventstore.CheckpointKey {
	return eventstore.CheckpointKey{Subscription: m.name, Partition: 0}
}
