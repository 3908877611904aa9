package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/imageservice/imageservice/eventstore"
)

// pipelined makes a subscription read ahead and checkpoint with an
// interval that no test outlasts, so that only catching up and stopping
// store its checkpoints.
func pipelined(sub eventstore.Subscription) eventstore.Subscription {
	sub.Read.ReadAhead = true
	sub.CheckpointInterval = time.Hour
	return sub
}

// checkpointModes are the ways a runner can checkpoint with an interval:
// reading ahead or not.
var checkpointModes = []struct {
	name      string
	readAhead bool
}{{"sequential", false}, {"read-ahead", true}}

// acked wraps a store to check that the runner never stores a checkpoint
// past the batches its handler has returned from successfully.
type acked struct {
	eventstore.Store
	t     *testing.T
	mu    sync.Mutex
	upTo  map[string]eventstore.Position // by subscription: the end of the last batch handled
	saves map[string][]eventstore.Position
}

func newAcked(t *testing.T, s eventstore.Store) *acked {
	return &acked{Store: s, t: t, upTo: map[string]eventstore.Position{}, saves: map[string][]eventstore.Position{}}
}

// handled records that the handler is about to return nil for the batch.
func (a *acked) handled(b eventstore.Batch) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.upTo[b.Checkpoint.Key.Subscription] = b.Checkpoint.Position
}

func (a *acked) SaveCheckpoint(ctx context.Context, key eventstore.CheckpointKey, epoch int64, pos eventstore.Position) error {
	a.mu.Lock()
	if up := a.upTo[key.Subscription]; up.Less(pos) {
		a.t.Errorf("%s: checkpoint %s stored past the last batch handled (up to %s)", key, pos, up)
	}
	a.saves[key.Subscription] = append(a.saves[key.Subscription], pos)
	a.mu.Unlock()
	return a.Store.SaveCheckpoint(ctx, key, epoch, pos)
}

func (a *acked) savesOf(sub string) []eventstore.Position {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]eventstore.Position(nil), a.saves[sub]...)
}

// settled appends n events and waits until the whole log is readable, so
// that the reads of a subscription that starts now are exactly the log's
// events in full batches, then a short one. It returns the positions of
// the log's events: the n events and readAll's sentinel, last; and their ids.
func settled(t *testing.T, s eventstore.Store, n int) ([]eventstore.Position, []uuid.UUID) {
	appendN(t, s, n)
	events := readAll(t, s)
	var after eventstore.Position
	if len(events) > 0 {
		after = events[len(events)-1].Position
	}
	sentinel, err := s.ReadAll(ctx(t), after, 10)
	if err != nil || len(sentinel) != 1 {
		t.Fatalf("read the sentinel: %d events, %v", len(sentinel), err)
	}
	var log []eventstore.Position
	var ids []uuid.UUID
	for _, e := range append(events, sentinel...) {
		log = append(log, e.Position)
		ids = append(ids, e.ID)
	}
	return log, ids
}

func checkpointOf(t *testing.T, s eventstore.Store, sub string) eventstore.Position {
	cp, err := s.Checkpoint(ctx(t), eventstore.CheckpointKey{Subscription: sub})
	if err != nil {
		t.Fatal(err)
	}
	return cp
}

// testCheckpointWhenCaughtUp: with a checkpoint interval, the runner
// stores the checkpoint as soon as it has caught up, at the last event,
// without waiting for the interval or for more events: after a short
// batch, and after the empty read that follows a catch-up whose last batch
// was full. The interval is never reached, so that is the only write.
func testCheckpointWhenCaughtUp(t *testing.T, b Backend) {
	s := newAcked(t, b.Store)
	log, _ := settled(t, b.Store, 9) // ten events with the sentinel
	for _, mode := range checkpointModes {
		for _, size := range []int{5, 4} { // two full batches; or two full, one short
			name := fmt.Sprintf("caught-up-%s-%d", mode.name, size)
			sub := pipelined(eventstore.Subscription{Name: name, Read: eventstore.ReadOptions{BatchSize: size}})
			sub.Read.ReadAhead = mode.readAhead
			sub.Handler = func(_ context.Context, b eventstore.Batch) error { s.handled(b); return nil }
			var h handled
			r := startReplica(t, s, "one", time.Minute, sub, &h)
			eventually(t, name+": the checkpoint to reach the last event", func() bool {
				return checkpointOf(t, s, name) == log[len(log)-1]
			})
			running(t, r, name)
			if h.count() != len(log) {
				t.Errorf("%s: handled %d events, want %d", name, h.count(), len(log))
			}
			if saves := s.savesOf(name); len(saves) != 1 {
				t.Errorf("%s: checkpoint stored %d times (%v), want once, when caught up", name, len(saves), saves)
			}
		}
	}
}

// running fails the test if the replica has stopped: a checkpoint stored
// as it stopped does not show that it was stored when caught up.
func running(t *testing.T, r *replica, name string) {
	t.Helper()
	select {
	case <-r.done:
		t.Fatalf("%s: the replica stopped", name)
	default:
	}
}

// testCheckpointWhenStopping: with a checkpoint interval, the batches
// handled before a handler failure, or before the runner's context ends,
// are checkpointed as the partition stops, and nothing after them.
func testCheckpointWhenStopping(t *testing.T, b Backend) {
	s := newAcked(t, b.Store)
	log, _ := settled(t, b.Store, 9) // ten events: batches of three end at events 3, 6, 9 and 10
	errRefused := errors.New("storetest: batch refused")
	for _, mode := range checkpointModes {
		// The handler refuses the third batch until let through.
		name := "failure-" + mode.name
		var mu sync.Mutex
		refuse := true
		sub := pipelined(eventstore.Subscription{Name: name, Read: eventstore.ReadOptions{BatchSize: 3}})
		sub.Read.ReadAhead = mode.readAhead
		sub.Handler = func(_ context.Context, b eventstore.Batch) error {
			mu.Lock()
			defer mu.Unlock()
			if refuse && b.Checkpoint.Position == log[8] {
				return errRefused
			}
			s.handled(b)
			return nil
		}
		var h handled
		r := startReplica(t, s, "one", time.Minute, sub, &h)
		eventually(t, name+": the checkpoint after the second batch", func() bool {
			return checkpointOf(t, s, name) == log[5]
		})
		mu.Lock()
		refuse = false
		mu.Unlock()
		eventually(t, name+": the checkpoint to reach the last event", func() bool {
			return checkpointOf(t, s, name) == log[len(log)-1]
		})
		running(t, r, name)

		// The handler blocks on the third batch until the runner stops.
		name = "stopped-" + mode.name
		sub.Name = name
		blocked := make(chan struct{})
		sub.Handler = func(ctx context.Context, b eventstore.Batch) error {
			if b.Checkpoint.Position == log[8] {
				close(blocked)
				<-ctx.Done()
				return ctx.Err()
			}
			s.handled(b)
			return nil
		}
		r = startReplica(t, s, "one", time.Minute, sub, &h)
		<-blocked
		if cp := checkpointOf(t, s, name); cp != (eventstore.Position{}) {
			t.Fatalf("%s: checkpoint %s stored while catching up, before the interval", name, cp)
		}
		r.halt()
		if cp := checkpointOf(t, s, name); cp != log[5] {
			t.Errorf("%s: checkpoint %s after stopping, want %s (after the second batch)", name, cp, log[5])
		}
	}
}

// testCheckpointIntervalFenced: a runner that checkpoints with an interval
// and lost its lease cannot store its pending checkpoint as it stops.
func testCheckpointIntervalFenced(t *testing.T, b Backend) {
	s := b.Store
	settled(t, s, 5) // six events: three full batches of two
	key := eventstore.CheckpointKey{Subscription: "fenced-interval"}
	tookOver := make(chan struct{})
	calls := 0
	sub := pipelined(eventstore.Subscription{Name: key.Subscription, Read: eventstore.ReadOptions{BatchSize: 2}})
	sub.Handler = func(hctx context.Context, _ eventstore.Batch) error {
		calls++
		if calls == 1 {
			// The holder's renewals fail: it stops at the lease's local
			// deadline, with this batch handled but not checkpointed,
			// while the handler goes on until another took the lease.
			err := takeOver(ctx(t), s, key)
			close(tookOver)
			return err
		}
		<-hctx.Done()
		return hctx.Err()
	}
	old := &faulty{Store: s}
	old.noRenew.Store(true)
	var h handled
	r := startFaultyReplica(t, old, "old", 300*time.Millisecond, sub, &h)
	<-tookOver
	r.halt()
	if old.fenced.Load() == 0 {
		t.Error("the old holder did not try to store its pending checkpoint as it stopped")
	}
	if cp := checkpointOf(t, s, key.Subscription); cp != (eventstore.Position{}) {
		t.Fatalf("checkpoint %s stored by a holder that had lost its lease", cp)
	}
}

// takeOver acquires the lease for another holder once the current
// holder's lease has expired.
func takeOver(ctx context.Context, s eventstore.Store, key eventstore.CheckpointKey) error {
	for {
		_, err := s.AcquireLease(ctx, key, "usurper", time.Hour)
		if !errors.Is(err, eventstore.ErrLeaseHeld) {
			if err != nil {
				return fmt.Errorf("take over %s: %w", key, err)
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("take over %s: %w", key, ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// testPrepare: Prepare sees every batch, in order, before its handler, and
// the handler gets what it returned; a failed Prepare is retried from the
// checkpoint, losing and repeating nothing.
func testPrepare(t *testing.T, b Backend) {
	s := b.Store
	log, all := settled(t, s, 9)
	for _, mode := range checkpointModes {
		name := "prepare-" + mode.name
		var mu sync.Mutex
		var prepared []eventstore.Position // the first event of each batch prepared
		failed := false
		sub := eventstore.Subscription{Name: name, Read: eventstore.ReadOptions{BatchSize: 3, ReadAhead: mode.readAhead}}
		sub.Prepare = func(_ context.Context, events []eventstore.Event) (any, error) {
			mu.Lock()
			defer mu.Unlock()
			prepared = append(prepared, events[0].Position)
			if events[0].Position == log[6] && !failed {
				failed = true
				return nil, errors.New("storetest: prepare failed")
			}
			return ids(events), nil
		}
		sub.Handler = func(_ context.Context, b eventstore.Batch) error {
			if got, want := b.Prepared, ids(b.Events); !equalAny(got, want) {
				t.Errorf("%s: handler got %v prepared, want %v", name, got, want)
			}
			return nil
		}
		var h handled
		startReplica(t, s, "one", time.Minute, sub, &h)
		eventually(t, name+": every event", func() bool { return h.count() >= len(log) })
		if got := h.ids(); !equalIDs(got, all) {
			t.Fatalf("%s: handled %d events, want the log's %d in order, none lost or repeated", name, len(got), len(all))
		}
		mu.Lock()
		want := []eventstore.Position{log[0], log[3], log[6], log[6], log[9]}
		if fmt.Sprint(prepared) != fmt.Sprint(want) {
			t.Errorf("%s: batches prepared from %v, want %v", name, prepared, want)
		}
		mu.Unlock()
	}
}

// testReadAhead: with ReadAhead, while the handler handles a batch, the
// next is prepared and the one after it read, and no more than those.
func testReadAhead(t *testing.T, b Backend) {
	s := &counted{Store: b.Store, third: make(chan struct{})}
	log, _ := settled(t, b.Store, 9)
	var mu sync.Mutex
	prepares := 0
	second := make(chan struct{}) // closed when the second batch is prepared
	sub := eventstore.Subscription{Name: "read-ahead", Read: eventstore.ReadOptions{BatchSize: 2, ReadAhead: true}}
	sub.Prepare = func(_ context.Context, events []eventstore.Event) (any, error) {
		mu.Lock()
		defer mu.Unlock()
		prepares++
		if prepares == 2 {
			close(second)
		}
		return nil, nil
	}
	sub.Handler = func(ctx context.Context, b eventstore.Batch) error {
		if b.Events[0].Position != log[0] {
			return nil
		}
		for _, c := range []chan struct{}{second, s.third} { // handled only once both happened
			select {
			case <-c:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		mu.Lock()
		defer mu.Unlock()
		if prepares != 2 || s.reads.Load() != 3 {
			t.Errorf("%d batches prepared and %d read while the first was handled, want 2 and 3", prepares, s.reads.Load())
		}
		return nil
	}
	var h handled
	startReplica(t, s, "one", time.Minute, sub, &h)
	eventually(t, "every event", func() bool { return h.count() >= len(log) })
}

// counted counts ReadAll calls and closes third at the third.
type counted struct {
	eventstore.Store
	reads atomic.Int32
	third chan struct{}
}

func (c *counted) ReadAll(ctx context.Context, after eventstore.Position, limit int) ([]eventstore.Event, error) {
	events, err := c.Store.ReadAll(ctx, after, limit)
	if c.reads.Add(1) == 3 {
		close(c.third)
	}
	return events, err
}

func ids(events []eventstore.Event) []string {
	out := make([]string, len(events))
	for i, e := range events {
		out[i] = e.ID.String()
	}
	return out
}

func equalAny(got any, want []string) bool {
	g, ok := got.([]string)
	return ok && fmt.Sprint(g) == fmt.Sprint(want)
}
