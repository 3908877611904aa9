package storetest

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/imageservice/imageservice/eventstore"
)

// collector follows the log and records what it was handed.
type collector struct {
	mu     sync.Mutex
	events []eventstore.Event
	nexts  []eventstore.Position
	done   chan error
}

// follow starts a Follow from the beginning of the log that runs until the
// test ends. A read error (a busy database on a loaded machine, say) is
// logged and the Follow resumes after the last batch handed over, as a
// subscription runner would.
func follow(t *testing.T, s eventstore.Store, batchSize int) *collector {
	return followOpts(t, s, eventstore.ReadOptions{BatchSize: batchSize})
}

// followOpts is follow with the given read options.
func followOpts(t *testing.T, s eventstore.Store, opts eventstore.ReadOptions) *collector {
	c := &collector{done: make(chan error, 1)}
	fctx, cancel := context.WithCancel(ctx(t))
	go func() {
		var after eventstore.Position
		for {
			err := eventstore.Follow(fctx, s, after, opts,
				func(_ context.Context, events []eventstore.Event, next eventstore.Position) error {
					c.mu.Lock()
					defer c.mu.Unlock()
					c.events = append(c.events, events...)
					c.nexts = append(c.nexts, next)
					after = next
					return nil
				})
			if fctx.Err() != nil {
				c.done <- err
				return
			}
			t.Logf("follow stopped (%v); resuming after %s", err, after)
		}
	}()
	t.Cleanup(func() { cancel(); <-c.done })
	return c
}

func (c *collector) snapshot() ([]eventstore.Event, []eventstore.Position) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]eventstore.Event(nil), c.events...), append([]eventstore.Position(nil), c.nexts...)
}

func (c *collector) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.events)
}

// testLateCommitOfLowerPosition: a transaction holding a lower position
// commits after one holding a higher position. A running subscriber must
// still receive both, in order, and its checkpoints must never pass the
// open transaction's event.
func testLateCommitOfLowerPosition(t *testing.T, b Backend) {
	s := b.Store
	sub := follow(t, s, 100)
	mustAppend(t, s, "before", eventstore.Any, ev("Before", 0))
	eventually(t, "the first event", func() bool { return sub.count() == 1 })

	tx, err := b.Begin(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	low, lowEvent := appendInTx(t, tx, "low", ev("Low", 1))
	highEvent := ev("High", 2)
	highDone := make(chan eventstore.AppendResult, 1)
	go func() { highDone <- mustAppend(t, s, "high", eventstore.Any, highEvent) }()
	if !b.SerializesWriters {
		high := <-highDone
		if low.Positions[0].Global >= high.Positions[0].Global {
			t.Fatalf("setup: low %s is not below high %s", low.Positions[0], high.Positions[0])
		}
		// The committed later event must stay invisible while the earlier
		// transaction is open: reading it now would let a checkpoint pass
		// the event that is still to commit.
		visible, err := s.ReadAll(ctx(t), eventstore.Position{}, 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range visible {
			if e.ID == highEvent.ID {
				t.Fatal("a later transaction's event was readable while an earlier one was still open")
			}
		}
	}
	if err := tx.Commit(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if b.SerializesWriters {
		<-highDone
	}
	eventually(t, "all three events", func() bool { return sub.count() >= 3 })
	events, nexts := sub.snapshot()
	assertIDs(t, events, 1, lowEvent.ID, highEvent.ID)
	for i := 1; i < len(nexts); i++ {
		if !nexts[i-1].Less(nexts[i]) {
			t.Fatalf("checkpoints not increasing: %v", nexts)
		}
	}
}

// testPerStreamInversion: a transaction that got its place in the order
// earlier appends the next version of a stream after a later transaction
// appended the previous version. The later version must never be
// delivered before the earlier one.
func testPerStreamInversion(t *testing.T, b Backend) {
	s := b.Store
	sub := follow(t, s, 100)
	tx, err := b.Begin(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	first := ev("First", 1)
	firstDone := make(chan struct{})
	go func() { mustAppend(t, s, "inv", eventstore.Any, first); close(firstDone) }()
	if !b.SerializesWriters {
		<-firstDone
	}
	second := ev("Second", 2)
	if _, err := tx.Append(ctx(t), "inv", eventstore.Any, second); err != nil {
		// Refused: the earlier transaction starts over as a new one.
		if err := tx.Rollback(ctx(t)); err != nil {
			t.Fatal(err)
		}
		mustAppend(t, s, "inv", eventstore.Any, second)
	} else if err := tx.Commit(ctx(t)); err != nil {
		t.Fatal(err)
	}
	<-firstDone
	eventually(t, "both events", func() bool { return sub.count() >= 2 })
	events, _ := sub.snapshot()
	if len(events) != 2 {
		t.Fatalf("subscriber saw %d events, want 2", len(events))
	}
	for i, e := range events {
		if e.StreamVersion != int64(i+1) {
			t.Fatalf("delivered versions out of order: event %d has version %d", i, e.StreamVersion)
		}
	}
	stream, err := s.ReadStream(ctx(t), "inv", 0, 10)
	if err != nil || len(stream) != 2 {
		t.Fatalf("ReadStream = %d events, %v", len(stream), err)
	}
}

// testConcurrentWritersAndSubscribers: 8 writers x 1,000 appends to
// overlapping streams while 4 subscribers run, one of them reading ahead.
// Each subscriber sees every event exactly once, in per-stream order;
// stream versions have no holes.
func testConcurrentWritersAndSubscribers(t *testing.T, b Backend) {
	const writers, perWriter, streams = 8, 1000, 13
	s := b.Store
	subs := []*collector{follow(t, s, 1000), follow(t, s, 100), follow(t, s, 7),
		followOpts(t, s, eventstore.ReadOptions{BatchSize: 50, ReadAhead: true})}
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range perWriter {
				stream := fmt.Sprintf("overlap-%d", (w*7+i)%streams)
				if _, err := s.Append(ctx(t), stream, eventstore.Any, ev("W", w*perWriter+i)); err != nil {
					t.Errorf("writer %d append %d: %v", w, i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	for i, sub := range subs {
		eventually(t, fmt.Sprintf("subscriber %d to see every event", i),
			func() bool { return sub.count() >= writers*perWriter })
		events, _ := sub.snapshot()
		checkPerStreamOrder(t, fmt.Sprintf("subscriber %d", i), events, writers*perWriter)
	}
}

// checkPerStreamOrder checks that events hold want distinct events and
// that each stream's versions run 1, 2, 3, ... without holes or repeats.
func checkPerStreamOrder(t *testing.T, who string, events []eventstore.Event, want int) {
	t.Helper()
	if len(events) != want {
		t.Fatalf("%s saw %d events, want %d", who, len(events), want)
	}
	seen := make(map[uuid.UUID]bool, len(events))
	last := map[string]int64{}
	for _, e := range events {
		if seen[e.ID] {
			t.Fatalf("%s saw event %s twice", who, e.ID)
		}
		seen[e.ID] = true
		if e.StreamVersion != last[e.StreamID]+1 {
			t.Fatalf("%s: stream %s version %d after %d", who, e.StreamID, e.StreamVersion, last[e.StreamID])
		}
		last[e.StreamID] = e.StreamVersion
	}
}

func appendInTx(t *testing.T, tx Tx, stream string, e eventstore.NewEvent) (eventstore.AppendResult, eventstore.NewEvent) {
	t.Helper()
	res, err := tx.Append(ctx(t), stream, eventstore.Any, e)
	if err != nil {
		t.Fatalf("append in transaction: %v", err)
	}
	return res, e
}

// assertIDs checks that events, after the first skip, have exactly the given ids.
func assertIDs(t *testing.T, events []eventstore.Event, skip int, ids ...uuid.UUID) {
	t.Helper()
	if len(events) != skip+len(ids) {
		t.Fatalf("got %d events, want %d", len(events), skip+len(ids))
	}
	for i, id := range ids {
		if e := events[skip+i]; e.ID != id {
			t.Fatalf("event %d is %s (%s), want %s", skip+i, e.ID, e.Type, id)
		}
	}
}
