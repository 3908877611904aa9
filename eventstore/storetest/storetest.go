// Package storetest is the conformance suite of the event store: every
// backend's own test calls Exercise with a constructor, and passes every
// case. Each case runs in parallel on a fresh, empty store, with real
// concurrent connections where it reproduces a race.
package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/imageservice/imageservice/eventstore"
	"github.com/imageservice/imageservice/internal/testwait"
)

// Backend is one fresh, empty store and the means to reproduce races on it.
type Backend struct {
	// Store is the store under test; the constructor closes it in t.Cleanup.
	Store eventstore.Store
	// Begin starts a transaction on a connection of its own that is
	// already placed in the commit order (it holds its transaction id), so
	// that writes by others after Begin come from later transactions.
	Begin func(ctx context.Context) (Tx, error)
	// SerializesWriters is true for backends with a single writer (SQLite):
	// a second writer waits for an open Tx, so the interleavings that need
	// two open writers are checked in their sequential form.
	SerializesWriters bool
	// Appends, when set, records what the store's AppendObserver option
	// is told (the backend passes Appends.Observe to it); the
	// ObserveAppend case checks it.
	Appends *AppendLog
}

// Tx is an open write transaction of the backend.
type Tx interface {
	// Append appends within the transaction, like Store.Append.
	Append(ctx context.Context, stream string, expected eventstore.ExpectedVersion, events ...eventstore.NewEvent) (eventstore.AppendResult, error)
	Commit(ctx context.Context) error
	Rollback(ctx context.Context) error
}

// Exercise runs the whole suite. newBackend is called once per case and
// must return a fresh, empty store (a new schema or database).
func Exercise(t *testing.T, newBackend func(t *testing.T) Backend) {
	t.Helper()
	cases := []struct {
		name string
		run  func(t *testing.T, b Backend)
	}{
		{"AppendAndReadStream", testAppendAndReadStream},
		{"ExpectedVersions", testExpectedVersions},
		{"IdempotentRetry", testIdempotentRetry},
		{"ConflictingRetry", testConflictingRetry},
		{"ConcurrentIdenticalAppends", testConcurrentIdenticalAppends},
		{"BusyStreamAny", testBusyStreamAny},
		{"BadInput", testBadInput},
		{"CancelledContext", testCancelledContext},
		{"ReadAllInBatches", testReadAllInBatches},
		{"LateCommitOfLowerPosition", testLateCommitOfLowerPosition},
		{"PerStreamInversion", testPerStreamInversion},
		{"ConcurrentWritersAndSubscribers", testConcurrentWritersAndSubscribers},
		{"SubscriberRestart", testSubscriberRestart},
		{"SubscriberRestartPipelined", testSubscriberRestartPipelined},
		{"SubscriberKilled", testSubscriberKilled},
		{"LeaseExclusive", testLeaseExclusive},
		{"LeaseTakeoverFencesOldHolder", testLeaseTakeoverFencesOldHolder},
		{"RunnerTakeover", testRunnerTakeover},
		{"RunnerTakeoverPipelined", testRunnerTakeoverPipelined},
		{"CheckpointWhenCaughtUp", testCheckpointWhenCaughtUp},
		{"CheckpointWhenStopping", testCheckpointWhenStopping},
		{"CheckpointIntervalFenced", testCheckpointIntervalFenced},
		{"Prepare", testPrepare},
		{"ReadAhead", testReadAhead},
		{"PartitionedSubscription", testPartitionedSubscription},
		{"HandEmptyBatches", testHandEmptyBatches},
		{"Lag", testLag},
		{"ObserveAppend", testObserveAppend},
		{"ReclaimsUnreleasedLease", testReclaimsUnreleasedLease},
		{"LeaseExpiresLocally", testLeaseExpiresLocally},
		{"LeaseExpiresWithRenewerStalled", testLeaseExpiresWithRenewerStalled},
		{"RenewalRetried", testRenewalRetried},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.run(t, newBackend(t))
		})
	}
}

// ctx returns a context that ends with the test, bounded so that a hang
// fails the test instead of the whole run.
func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

// ev returns a new event of the given type with data {"n": n}.
func ev(typ string, n int) eventstore.NewEvent {
	return eventstore.NewEvent{
		ID:            eventstore.NewEventID(),
		Type:          typ,
		SchemaVersion: 1,
		Data:          json.RawMessage(fmt.Sprintf(`{"n": %d}`, n)),
		Metadata:      eventstore.Metadata{CorrelationID: "corr", Actor: "storetest"},
	}
}

// sentinelStream holds the events that readAll appends to settle the log.
const sentinelStream = "storetest-sentinel"

// readAll reads the whole log once every append made before the call is
// readable, leaving out its own sentinel events. Readers see an event only
// when every transaction that began before it has ended, in any schema of
// the database, so tests running in parallel can hold others' reads back
// for a while: readAll appends a sentinel and reads until it shows.
func readAll(t *testing.T, s eventstore.Store) []eventstore.Event {
	t.Helper()
	sentinel := ev("Sentinel", 0)
	mustAppend(t, s, sentinelStream, eventstore.Any, sentinel)
	var all []eventstore.Event
	var after eventstore.Position
	for {
		batch, err := s.ReadAll(ctx(t), after, 1000)
		if err != nil {
			t.Fatalf("ReadAll: %v", err)
		}
		for _, e := range batch {
			if e.ID == sentinel.ID {
				return all
			}
			if e.StreamID != sentinelStream {
				all = append(all, e)
			}
			after = e.Position
		}
		if len(batch) == 0 {
			time.Sleep(5 * time.Millisecond)
		}
	}
}

func mustAppend(t *testing.T, s eventstore.Store, stream string, expected eventstore.ExpectedVersion, events ...eventstore.NewEvent) eventstore.AppendResult {
	t.Helper()
	res, err := s.Append(ctx(t), stream, expected, events...)
	if err != nil {
		t.Fatalf("Append(%s, %s): %v", stream, expected, err)
	}
	return res
}

// eventually polls cond until it holds or the deadline passes. It waits
// for a state, never for a duration, so slow machines only run longer; the
// deadline is generous because CI runs every package at once on 2 cores.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testwait.Until(t, 3*time.Minute, what, cond)
}
