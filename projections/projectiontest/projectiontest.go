// Package projectiontest is the conformance suite of the read models:
// backend-independent tests of a projections.Reader and its projector,
// which every backend (projections/postgres, projections/sqlite) runs
// with Exercise.
package projectiontest

import (
	"context"
	"log/slog"
	"testing"

	"github.com/imageservice/imageservice/eventstore"
	"github.com/imageservice/imageservice/projections"
)

// Model is a read model under test: the Reader, its projector and
// WaitFor.
type Model interface {
	projections.Reader
	projections.BlobUser
	// Name is the projector's subscription name, which names its checkpoint.
	Name() string
	// Projector is the subscription that keeps the model up to date.
	Projector() eventstore.Subscription
	// WaitFor blocks until the model has applied the log up to pos.
	WaitFor(ctx context.Context, pos eventstore.Position) error
}

// Backend is one fresh, empty read model and its event store.
type Backend struct {
	// Store is the event store the model projects.
	Store eventstore.Store
	// Model is the read model, migrated, with no projector running.
	Model Model
	// Rebuild rebuilds the model from the log while a projector may run;
	// nil skips the rebuild tests.
	Rebuild func(ctx context.Context, progress func(done, total int64, rate float64)) error
}

// Config is what a new backend must be set up with.
type Config struct {
	// Logger must receive the model's log lines (skipped events).
	Logger *slog.Logger
	// RebuildBatchSize is the number of events Rebuild must read at a time.
	RebuildBatchSize int
}

// rebuildBatch is the Config.RebuildBatchSize of the suite: small, so
// that a rebuild runs several batches.
const rebuildBatch = 5

// Exercise runs the suite. newBackend must return a fresh backend (its
// own database or schema) for each call, cleaned up when t ends; every
// case runs in parallel.
func Exercise(t *testing.T, newBackend func(t *testing.T, cfg Config) Backend) {
	cases := []struct {
		name string
		fn   func(t *testing.T, e *Env)
	}{
		{"ViewsMatchReplay", testViewsMatchReplay},
		{"NotFound", testNotFound},
		{"DeletedImages", testDeletedImages},
		{"BlobUse", testBlobUse},
		{"ImagesPagination", testImagesPagination},
		{"PageArgumentsRejected", testPageArgumentsRejected},
		{"DithersPagination", testDithersPagination},
		{"DithersByImage", testDithersByImage},
		{"WaitFor", testWaitFor},
		{"ProjectorResumes", testProjectorResumes},
		{"SkipsForeignAndBadEvents", testSkipsForeignAndBadEvents},
		{"StopsAtUnreadableEvents", testStopsAtUnreadableEvents},
		{"RebuildWhileReading", testRebuildWhileReading},
		{"RebuildEmptyLogTwice", testRebuildEmptyLogTwice},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.fn(t, NewEnv(t, newBackend))
		})
	}
}
