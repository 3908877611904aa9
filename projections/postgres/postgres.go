// Package postgres keeps the image and dither read models of package
// projections in PostgreSQL, next to the event log of eventstore/postgres.
//
// # Projecting
//
// The projector (Projector, or Run) is a leased subscription of the log.
// For each batch it groups the events by image stream, loads the stored
// images.Image states of those images in one query, folds each event in
// with images.Evolve (the code that replays a stream) and writes the
// denormalised image_view and dither_view rows and the states back, in ONE
// transaction with the subscription's fenced checkpoint. A batch is thus
// applied exactly once, and a projector that lost its lease cannot write.
// Events of other streams are ignored; events that cannot be decoded are
// logged and skipped, so they never wedge the projector.
//
// # Reading your writes
//
// WaitFor blocks until the projection has applied the log up to a
// position, such as the last position of an append.
//
// # Rebuilding
//
// Rebuild replays the whole log into shadow tables while the live model
// keeps serving queries, then swaps the shadow tables in by renames and
// stores the checkpoint in one transaction, under the projection's lease,
// so readers only ever see a complete model. It keeps the lease as the
// projector's runner does (eventstore.LeaseKeeper), and stops, leaving
// the old model in place, once the lease is lost or its local deadline
// passes without a renewal.
package postgres

import (
	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/imageservice/imageservice/eventstore"
	espg "github.com/imageservice/imageservice/eventstore/postgres"
	"github.com/imageservice/imageservice/projections"
)

// DefaultName is the subscription name of the projector, which names its
// checkpoint and lease.
const DefaultName = "projections"

// ReadModel is the PostgreSQL read model: it implements
// projections.Reader, projects the log into its tables and rebuilds them.
// It is safe for concurrent use.
type ReadModel struct {
	store *espg.Store
	pool  *pgxpool.Pool
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
// DefaultName). Two read models in one schema need different names only
// if they project into different tables, which this package does not do:
// the name exists for tests and renames.
func WithName(name string) Option { return func(m *ReadModel) { m.name = name } }

// WithLogger sets the logger of skipped events and rebuilds (default
// slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(m *ReadModel) { m.log = l } }

// WithRebuildBatchSize sets how many events Rebuild reads and writes at a
// time (default 1000).
func WithRebuildBatchSize(n int) Option { return func(m *ReadModel) { m.rebuildBatch = n } }

// New returns the read model stored in the event store's database (in the
// pool's search_path schema, migrated with Migrate).
func New(store *espg.Store, opts ...Option) *ReadModel {
	m := &ReadModel{store: store, pool: store.Pool(), name: DefaultName, log: slog.Default(), rebuildBatch: 1000}
	for _, o := range opts {
		o(m)
	}
	if m.name == "" {
		m.name = DefaultName
	}
	if m.rebuildBatch <= 0 {
		m.rebuildBatch = 1000
	}
	return m
}

// Name returns the projection's subscription name.
func (m *ReadModel) Name() string { return m.name }

// key is the checkpoint and lease key of the projection (one partition).
func (m *ReadModel) key() eventstore.CheckpointKey {
	return eventstore.CheckpointKey{Subscription: m.name, Partition: 0}
}
