// Package blobgc purges the blobs that no live image uses: the originals
// and dither results of deleted images, the orphans of failed uploads and
// dithers whose outcome was refused, and thumbnails (package thumbs, which
// nothing durable references: a purged one is made again when asked for).
//
// A Sweeper sweeps every Interval, on one replica at a time (it holds the
// lease "blob-sweeper" of the event store, and keeps it for the interval
// after a sweep, so the lease is also the fleet's schedule). A sweep:
//
//  1. reads the blob store's clock and takes cutoff = now - Retention, and
//     ends there when no blob was last put before the cutoff;
//  2. appends BlobSweepStarted (with the cutoff) to the stream
//     "blob-sweeps" and waits until the image read model has folded the
//     log in up to that marker;
//  3. lists the blobs last put before the cutoff and, for each that no
//     live image uses (projections.BlobUse: Live == 0), calls
//     blobstore.Purger.Purge(key, cutoff);
//  4. records the keys it purged in BlobsPurged events on the same stream,
//     an audit trail (neither the projections, the bridge nor GraphQL look
//     at streams that are not an image's).
//
// # Why no live image loses its bytes
//
// Say an image uses blob K and K is purged. Purge removed K only if K's
// last Put was at P < cutoff, and Purge is atomic with respect to Put
// (blobstore.Purger): a Put of K after the removal stores K again, so the
// image's own Put of K (an upload stores its original, a dither job its
// result, before appending the event that references the key) was at or
// before P. Its event committed at most G after its Put, where G is the
// longest time between a Put and the commit of the event that references
// it: an upload stores its bytes and appends in one request (on PostgreSQL
// in one transaction), and a dither stores its result and then appends its
// outcome within one attempt, which JOB_TIMEOUT bounds (a River job on
// PostgreSQL; on the embedded default an attempt of the inline processor,
// which appends right after storing, a local write). Both take seconds at
// most. With Retention > G, the event
// committed before P + Retention < cutoff + Retention = the start of the
// sweep, before the marker was appended. In the event store's order every
// transaction that committed before the marker's began has a lower
// position (on PostgreSQL, positions are ordered by transaction id, which
// is assigned when a transaction first writes), so once the read model's
// checkpoint reaches the marker it has folded the event in, and the
// sweep saw the image as live and kept K. Waiting for the log's Head
// would not do: PostgreSQL readers only see transactions below the
// oldest open one, so a committed event can be invisible for a while.
// An image made live after the sweep checked K needs a new Put of K (the
// only events that reference blobs are ImageUploaded and DitherCompleted),
// which is after the cutoff and so keeps K from being purged.
//
// Retention must therefore exceed G by a wide margin: New refuses less
// than MinRetention (an hour), and the service's configuration also
// requires more than JOB_TIMEOUT. The argument also assumes that the read
// model folds in every ImageUploaded and DitherCompleted event: it stops
// at an event of a type or schema version its build does not know rather
// than skip it (projections.Fold), and skips, with an error in the log,
// only an event of a known version whose JSON does not decode, which the
// service never appends. It also assumes, for the
// filesystem blob store, that one process uses the directory.
package blobgc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/imageservice/imageservice/blobstore"
	"github.com/imageservice/imageservice/eventstore"
	"github.com/imageservice/imageservice/projections"
)

// Names in the event store.
const (
	// Stream is the sweeper's own stream: its markers and audit trail.
	Stream = "blob-sweeps"
	// TypeSweepStarted marks the start of a sweep; its data is SweepStarted.
	TypeSweepStarted = "BlobSweepStarted"
	// TypeBlobsPurged records blobs a sweep purged; its data is BlobsPurged.
	TypeBlobsPurged = "BlobsPurged"
	// LeaseName is the subscription name of the sweeper's lease.
	LeaseName = "blob-sweeper"
	// Actor is the metadata actor of the sweeper's events.
	Actor = "blob-sweeper"
)

// Defaults and bounds of Options.
const (
	// MinRetention is the shortest Retention New accepts.
	MinRetention = time.Hour
	// MinInterval is the shortest Interval New accepts: a sweep that has
	// candidates appends a marker to the log, which would otherwise grow
	// without bound under a tiny interval.
	MinInterval = 5 * time.Minute
	// DefaultInterval is how often a sweep runs unless configured.
	DefaultInterval = time.Hour
	// DefaultPageSize is how many blobs a sweep lists at a time.
	DefaultPageSize = 500
	// DefaultWaitTimeout bounds the wait for the read model.
	DefaultWaitTimeout = 10 * time.Minute
)

// SweepStarted is the data of a BlobSweepStarted event.
type SweepStarted struct {
	// Cutoff: blobs last put before it may be purged.
	Cutoff time.Time `json:"cutoff"`
	// Retention is what the cutoff was computed with.
	Retention string `json:"retention"`
}

// BlobsPurged is the data of a BlobsPurged event.
type BlobsPurged struct {
	// Cutoff is the sweep's (see SweepStarted).
	Cutoff time.Time `json:"cutoff"`
	// Keys are the purged blobs' keys.
	Keys []string `json:"keys"`
	// Bytes is their total size.
	Bytes int64 `json:"bytes"`
}

// Options are what a Sweeper needs; Store, Blobs, Users, WaitFor and
// Retention are required.
type Options struct {
	// Store is the event log: the sweeper's stream and lease.
	Store eventstore.Store
	// Blobs is the blob store to purge.
	Blobs blobstore.Purger
	// Users tells which images use a blob: the image read model.
	Users projections.BlobUser
	// WaitFor waits until the read model Users reads has folded in the
	// event at a position.
	WaitFor func(ctx context.Context, pos eventstore.Position) error
	// Retention is how long a blob is kept after its last Put, at least
	// MinRetention (see the package documentation).
	Retention time.Duration
	// Interval is how often a sweep runs (default DefaultInterval, at
	// least MinInterval).
	Interval time.Duration
	// Now is the clock the cutoff is computed from (default Blobs.Now, the
	// clock Put times are recorded with). Tests set it to sweep "as if
	// later" without waiting for MinRetention to pass.
	Now func(ctx context.Context) (time.Time, error)
	// Holder names this replica in the lease (default
	// eventstore.DefaultHolder()).
	Holder string
	// Logger receives each sweep's outcome (default slog.Default()).
	Logger *slog.Logger
	// Observe, when set, is told of each sweep's purged blobs and bytes
	// and its error (for metrics); it must not block.
	Observe func(blobs int, bytes int64, err error)
	// PageSize is how many blobs are listed at a time (default
	// DefaultPageSize).
	PageSize int
	// WaitTimeout bounds the wait for the read model; a sweep that runs
	// out of it purges nothing (default DefaultWaitTimeout).
	WaitTimeout time.Duration
}

// Sweeper purges unused blobs; see the package documentation.
type Sweeper struct{ o Options }

// New checks opts and returns a Sweeper.
func New(opts Options) (*Sweeper, error) {
	if opts.Store == nil || opts.Blobs == nil || opts.Users == nil || opts.WaitFor == nil {
		return nil, errors.New("blob sweeper: Store, Blobs, Users and WaitFor are required")
	}
	if opts.Retention < MinRetention {
		return nil, fmt.Errorf("blob sweeper: retention %s is shorter than the minimum, %s", opts.Retention, MinRetention)
	}
	if opts.Interval == 0 {
		opts.Interval = DefaultInterval
	}
	if opts.Interval < MinInterval {
		return nil, fmt.Errorf("blob sweeper: interval %s is shorter than the minimum, %s", opts.Interval, MinInterval)
	}
	if opts.Now == nil {
		opts.Now = opts.Blobs.Now
	}
	if opts.Holder == "" {
		opts.Holder = eventstore.DefaultHolder()
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.PageSize <= 0 {
		opts.PageSize = DefaultPageSize
	}
	if opts.WaitTimeout <= 0 {
		opts.WaitTimeout = DefaultWaitTimeout
	}
	return &Sweeper{o: opts}, nil
}

// Retention returns how long an unused blob is kept after its last Put.
func (s *Sweeper) Retention() time.Duration { return s.o.Retention }

// Interval returns how often a sweep runs.
func (s *Sweeper) Interval() time.Duration { return s.o.Interval }
