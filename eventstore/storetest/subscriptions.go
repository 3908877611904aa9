package storetest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/imageservice/imageservice/eventstore"
)

// faulty wraps a store to act out a replica's failures: renewals that stop
// getting through, or a process that is killed and does nothing more.
type faulty struct {
	eventstore.Store
	noRenew    atomic.Bool  // RenewLease fails as on a broken network
	failRenews atomic.Int32 // the next this many RenewLease calls fail, then they get through again
	noAcquire  atomic.Bool  // AcquireLease fails, as while the database is down
	noRelease  atomic.Bool  // ReleaseLease fails, as while the database is down
	dead       atomic.Bool  // every call fails, as in a killed process
	fenced     atomic.Int64
	// stall, when set, holds every RenewLease until it is closed, whatever
	// its context, as in a process paused mid-call; then the call fails.
	stall chan struct{}

	mu       sync.Mutex
	renewals []int64 // the epochs of the leases renewed, in order
}

var errNoRenew = errors.New("storetest: renewals are not getting through")

var errDead = errors.New("storetest: this replica was killed")

func (f *faulty) check() error {
	if f.dead.Load() {
		return errDead
	}
	return nil
}

func (f *faulty) ReadAll(ctx context.Context, after eventstore.Position, limit int) ([]eventstore.Event, error) {
	if err := f.check(); err != nil {
		return nil, err
	}
	return f.Store.ReadAll(ctx, after, limit)
}

func (f *faulty) SaveCheckpoint(ctx context.Context, key eventstore.CheckpointKey, epoch int64, pos eventstore.Position) error {
	if err := f.check(); err != nil {
		return err
	}
	err := f.Store.SaveCheckpoint(ctx, key, epoch, pos)
	if errors.Is(err, eventstore.ErrLeaseLost) {
		f.fenced.Add(1)
	}
	return err
}

func (f *faulty) AcquireLease(ctx context.Context, key eventstore.CheckpointKey, holder string, ttl time.Duration) (eventstore.Lease, error) {
	if err := f.check(); err != nil {
		return eventstore.Lease{}, err
	}
	if f.noAcquire.Load() {
		return eventstore.Lease{}, errors.New("storetest: the acquisition did not get through")
	}
	return f.Store.AcquireLease(ctx, key, holder, ttl)
}

func (f *faulty) RenewLease(ctx context.Context, l eventstore.Lease, ttl time.Duration) (eventstore.Lease, error) {
	if f.stall != nil {
		<-f.stall
		return eventstore.Lease{}, errNoRenew
	}
	if f.dead.Load() || f.noRenew.Load() || f.blip() {
		return eventstore.Lease{}, errNoRenew
	}
	renewed, err := f.Store.RenewLease(ctx, l, ttl)
	if err == nil {
		f.mu.Lock()
		f.renewals = append(f.renewals, l.Epoch)
		f.mu.Unlock()
	}
	return renewed, err
}

// blip reports whether this renewal is one of failRenews, and counts it.
func (f *faulty) blip() bool {
	for {
		n := f.failRenews.Load()
		if n <= 0 {
			return false
		}
		if f.failRenews.CompareAndSwap(n, n-1) {
			return true
		}
	}
}

// renewed returns the epochs of the leases renewed so far, in order.
func (f *faulty) renewed() []int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]int64(nil), f.renewals...)
}

func (f *faulty) ReleaseLease(ctx context.Context, l eventstore.Lease) error {
	if err := f.check(); err != nil {
		return err
	}
	if f.noRelease.Load() {
		return errors.New("storetest: the release did not get through")
	}
	return f.Store.ReleaseLease(ctx, l)
}

// handled records what a subscription's handler was given, by holder.
type handled struct {
	mu      sync.Mutex
	events  []eventstore.Event
	holders []string
	parts   []int
}

func (h *handled) add(holder string, b eventstore.Batch) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, e := range b.Events {
		h.events = append(h.events, e)
		h.holders = append(h.holders, holder)
		h.parts = append(h.parts, b.Checkpoint.Key.Partition)
	}
}

func (h *handled) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.events)
}

// handledBy returns the events of ids that holder handled.
func (h *handled) handledBy(ids []uuid.UUID, holder string) []uuid.UUID {
	want := make(map[uuid.UUID]bool, len(ids))
	for _, id := range ids {
		want[id] = true
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	var got []uuid.UUID
	for i, e := range h.events {
		if want[e.ID] && h.holders[i] == holder {
			got = append(got, e.ID)
		}
	}
	return got
}

func (h *handled) ids() []uuid.UUID {
	h.mu.Lock()
	defer h.mu.Unlock()
	ids := make([]uuid.UUID, len(h.events))
	for i, e := range h.events {
		ids[i] = e.ID
	}
	return ids
}

// replica is one runner of a subscription, started in the background.
type replica struct {
	store  *faulty
	runner *eventstore.Runner
	stop   context.CancelFunc
	done   chan struct{}

	mu        sync.Mutex
	deadlines map[int64]time.Time // by epoch: the latest local deadline of the lease
}

// leased records a lease's local deadline (Runner.OnLease).
func (r *replica) leased(l eventstore.Lease, deadline time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if deadline.After(r.deadlines[l.Epoch]) {
		r.deadlines[l.Epoch] = deadline
	}
}

// deadline returns the latest local deadline of the lease of the epoch.
func (r *replica) deadline(epoch int64) time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.deadlines[epoch]
}

// startReplica runs sub on a runner named holder until stopped or the test ends.
func startReplica(t *testing.T, s eventstore.Store, holder string, ttl time.Duration, sub eventstore.Subscription, h *handled) *replica {
	return startFaultyReplica(t, &faulty{Store: s}, holder, ttl, sub, h)
}

// startFaultyReplica is startReplica on a store whose faults the test controls.
func startFaultyReplica(t *testing.T, f *faulty, holder string, ttl time.Duration, sub eventstore.Subscription, h *handled) *replica {
	r := &replica{
		store:     f,
		runner:    &eventstore.Runner{Store: f, Holder: holder, LeaseTTL: ttl, Logger: slog.New(slog.DiscardHandler)},
		done:      make(chan struct{}),
		deadlines: map[int64]time.Time{},
	}
	r.runner.OnLease = r.leased
	inner := sub.Handler
	sub.Handler = func(ctx context.Context, b eventstore.Batch) error {
		h.add(holder, b)
		if inner != nil {
			return inner(ctx, b)
		}
		return nil
	}
	var c context.Context
	c, r.stop = context.WithCancel(ctx(t))
	go func() { defer close(r.done); _ = r.runner.Run(c, sub) }()
	t.Cleanup(r.halt)
	return r
}

// halt stops the replica and waits for it.
func (r *replica) halt() { r.stop(); <-r.done }

func appendN(t *testing.T, s eventstore.Store, n int) []uuid.UUID {
	ids := make([]uuid.UUID, n)
	for i := range n {
		e := ev("E", i)
		ids[i] = e.ID
		mustAppend(t, s, fmt.Sprintf("sub-%d", i%4), eventstore.Any, e)
	}
	return ids
}

// testSubscriberRestart: a subscriber stopped and started again resumes
// from its checkpoint without losing or repeating events.
func testSubscriberRestart(t *testing.T, b Backend) {
	subscriberRestart(t, b, eventstore.Subscription{Name: "restart", Read: eventstore.ReadOptions{BatchSize: 4}})
}

// testSubscriberRestartPipelined is testSubscriberRestart reading ahead and
// checkpointing with an interval.
func testSubscriberRestartPipelined(t *testing.T, b Backend) {
	subscriberRestart(t, b, pipelined(eventstore.Subscription{Name: "restart", Read: eventstore.ReadOptions{BatchSize: 4}}))
}

func subscriberRestart(t *testing.T, b Backend, sub eventstore.Subscription) {
	s := b.Store
	first := appendN(t, s, 10)
	var h1, h2 handled
	r1 := startReplica(t, s, "one", time.Second, sub, &h1)
	eventually(t, "the first ten events", func() bool { return h1.count() == 10 })
	r1.halt()
	cp, err := s.Checkpoint(ctx(t), eventstore.CheckpointKey{Subscription: "restart"})
	if err != nil {
		t.Fatal(err)
	}
	second := appendN(t, s, 5)
	startReplica(t, s, "two", time.Second, sub, &h2)
	eventually(t, "the next five events", func() bool { return h2.count() >= 5 })
	all := append(first, second...)
	resumedIDs := h2.ids()
	resumed := indexOf(all, resumedIDs[0])
	// The restart begins after the checkpoint read once the first replica
	// stopped, or later: a save that the stop cancelled may still have
	// committed on the server. Never past what the first one handled.
	if earliest := len(all) - afterCheckpoint(t, s, cp); resumed < earliest || resumed > h1.count() {
		t.Fatalf("restart resumed at event %d, want one from the first after the checkpoint (%d) to the first unhandled (%d)",
			resumed, earliest, h1.count())
	}
	if got := append(h1.ids()[:resumed], resumedIDs...); !equalIDs(got, all) {
		t.Fatalf("restart lost or repeated events: %d handled, want %d", len(got), len(all))
	}
}

// testSubscriberKilled: a subscriber killed mid-work, without releasing its
// lease or saving its last checkpoint, is replaced by another replica after
// the lease expires, which repeats at most the batch that was in flight.
func testSubscriberKilled(t *testing.T, b Backend) {
	s := b.Store
	all := appendN(t, s, 20)
	var h1, h2 handled
	var batches, third atomic.Int32
	victim := &faulty{Store: s}
	sub := eventstore.Subscription{Name: "killed", Read: eventstore.ReadOptions{BatchSize: 3}}
	killer := sub
	killer.Handler = func(ctx context.Context, b eventstore.Batch) error {
		if batches.Add(1) == 3 {
			third.Store(int32(len(b.Events)))
			victim.dead.Store(true) // dies before it can checkpoint
		}
		return nil
	}
	startFaultyReplica(t, victim, "victim", 500*time.Millisecond, killer, &h1)
	eventually(t, "the victim to die", func() bool { return victim.dead.Load() })
	// Batches may come back short while other transactions of the
	// database hold the log's horizon back: the checkpoint is after the
	// victim's first two batches, whatever their sizes.
	checkpointed := h1.count() - int(third.Load())
	if checkpointed <= 0 || h1.count() > 9 {
		t.Fatalf("victim handled %d events in three batches, the last of %d", h1.count(), third.Load())
	}
	startReplica(t, s, "heir", 500*time.Millisecond, sub, &h2)
	want := all[checkpointed:]
	eventually(t, "the heir to finish", func() bool { return h2.count() >= len(want) })
	got := h2.ids()
	if len(got) != len(want) || !equalIDs(got, want) {
		t.Fatalf("heir handled %d events starting at %d, want the %d after the last checkpoint (%d)", len(got), indexOf(all, got[0]), len(want), checkpointed)
	}
}

// testLeaseExclusive: one holder at a time; a released lease is free at
// once and its epoch moves on; two runners of one subscription never both run.
func testLeaseExclusive(t *testing.T, b Backend) {
	s := b.Store
	key := eventstore.CheckpointKey{Subscription: "exclusive"}
	a, err := s.AcquireLease(ctx(t), key, "a", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AcquireLease(ctx(t), key, "b", time.Minute); !errors.Is(err, eventstore.ErrLeaseHeld) {
		t.Fatalf("second acquire: %v, want ErrLeaseHeld", err)
	}
	if _, err := s.AcquireLease(ctx(t), key, "a", time.Minute); !errors.Is(err, eventstore.ErrLeaseHeld) {
		t.Fatalf("re-acquire by the holder: %v, want ErrLeaseHeld", err)
	}
	if _, err := s.RenewLease(ctx(t), a, time.Minute); err != nil {
		t.Fatalf("renew: %v", err)
	}
	if err := s.ReleaseLease(ctx(t), a); err != nil {
		t.Fatal(err)
	}
	bl, err := s.AcquireLease(ctx(t), key, "b", time.Minute)
	if err != nil || bl.Epoch <= a.Epoch {
		t.Fatalf("acquire after release: %+v, %v", bl, err)
	}
	if _, err := s.RenewLease(ctx(t), a, time.Minute); !errors.Is(err, eventstore.ErrLeaseLost) {
		t.Fatalf("renew of a released lease: %v, want ErrLeaseLost", err)
	}

	var h handled
	sub := eventstore.Subscription{Name: "exclusive-runner"}
	startReplica(t, s, "r1", 2*time.Second, sub, &h)
	startReplica(t, s, "r2", 2*time.Second, sub, &h)
	ids := appendN(t, s, 30)
	eventually(t, "every event", func() bool { return h.count() >= 30 })
	h.mu.Lock()
	defer h.mu.Unlock()
	for i, holder := range h.holders {
		if holder != h.holders[0] {
			t.Fatalf("event %d handled by %s, earlier ones by %s: both runners ran", i, holder, h.holders[0])
		}
	}
	if len(h.events) != len(ids) {
		t.Fatalf("handled %d events, want %d", len(h.events), len(ids))
	}
}

// testLeaseTakeoverFencesOldHolder: an expired lease is taken over with a
// new epoch, and the old holder can neither renew nor move the checkpoint.
func testLeaseTakeoverFencesOldHolder(t *testing.T, b Backend) {
	s := b.Store
	key := eventstore.CheckpointKey{Subscription: "fenced", Partition: 3}
	old, err := s.AcquireLease(ctx(t), key, "old", 100*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SaveCheckpoint(ctx(t), key, old.Epoch, eventstore.Position{TransactionID: 1, Global: 1}); err != nil {
		t.Fatalf("holder's checkpoint: %v", err)
	}
	var heir eventstore.Lease
	eventually(t, "the lease to expire", func() bool {
		heir, err = s.AcquireLease(ctx(t), key, "heir", time.Minute)
		return err == nil
	})
	if heir.Epoch != old.Epoch+1 {
		t.Fatalf("heir epoch %d, want %d", heir.Epoch, old.Epoch+1)
	}
	if _, err := s.RenewLease(ctx(t), old, time.Minute); !errors.Is(err, eventstore.ErrLeaseLost) {
		t.Fatalf("old holder renewed: %v", err)
	}
	stale := eventstore.Position{TransactionID: 9, Global: 9}
	if err := s.SaveCheckpoint(ctx(t), key, old.Epoch, stale); !errors.Is(err, eventstore.ErrLeaseLost) {
		t.Fatalf("old holder's checkpoint write: %v, want ErrLeaseLost", err)
	}
	heirPos := eventstore.Position{TransactionID: 2, Global: 2}
	if err := s.SaveCheckpoint(ctx(t), key, heir.Epoch, heirPos); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Checkpoint(ctx(t), key); err != nil || got != heirPos {
		t.Fatalf("checkpoint = %s, %v; want the heir's %s", got, err, heirPos)
	}
}

// testRunnerTakeover: when the holder's lease calls stop getting through
// while its handler is busy, the holder stops at the lease's local
// deadline, cancelling its handler's context, before the lease expires in
// the store; another runner then takes the partition over, and it alone
// handles the events that follow.
func testRunnerTakeover(t *testing.T, b Backend) {
	runnerTakeover(t, b, eventstore.Subscription{Name: "takeover"})
}

// testRunnerTakeoverPipelined is testRunnerTakeover reading ahead and
// checkpointing with an interval.
func testRunnerTakeoverPipelined(t *testing.T, b Backend) {
	runnerTakeover(t, b, pipelined(eventstore.Subscription{Name: "takeover"}))
}

func runnerTakeover(t *testing.T, b Backend, sub eventstore.Subscription) {
	s := b.Store
	var h handled
	ttl := 500 * time.Millisecond
	f := &faulty{Store: s}
	var armed atomic.Bool
	stuck := make(chan lapse, 1)
	old := sub
	old.Handler = func(ctx context.Context, b eventstore.Batch) error {
		if !armed.CompareAndSwap(true, false) {
			return nil
		}
		// The holder's lease calls stop getting through while it works.
		f.noRenew.Store(true)
		f.noAcquire.Store(true)
		<-ctx.Done()
		stuck <- lapse{epoch: b.Checkpoint.Epoch, cause: context.Cause(ctx)}
		return nil // the work is done all the same
	}
	first := startFaultyReplica(t, f, "first", ttl, old, &h)
	appendN(t, s, 5)
	eventually(t, "five events", func() bool { return h.count() >= 5 })
	armed.Store(true)
	appendN(t, s, 1)

	var mu sync.Mutex
	var began time.Time // when the second runner's handler was first called
	heir := sub
	heir.Handler = func(context.Context, eventstore.Batch) error {
		mu.Lock()
		defer mu.Unlock()
		if began.IsZero() {
			began = time.Now()
		}
		return nil
	}
	startReplica(t, s, "second", ttl, heir, &h)
	l := waitLapse(t, stuck)
	if !errors.Is(l.cause, eventstore.ErrLeaseLost) {
		t.Fatalf("the first runner's handler context ended with %v, want ErrLeaseLost", l.cause)
	}
	eventually(t, "the second runner to take over", func() bool {
		appendN(t, s, 1)
		mu.Lock()
		defer mu.Unlock()
		return !began.IsZero()
	})
	next := appendN(t, s, 5)
	eventually(t, "the second runner to handle the next events", func() bool {
		return len(h.handledBy(next, "second")) == len(next)
	})
	if got := h.handledBy(next, "first"); len(got) > 0 {
		t.Fatalf("the first runner handled %d of the events after the takeover", len(got))
	}
	mu.Lock()
	defer mu.Unlock()
	if deadline := first.deadline(l.epoch); !deadline.Before(began) {
		t.Fatalf("the first runner's lease had its local deadline at %s, after the second began handling at %s",
			deadline.Format(time.RFC3339Nano), began.Format(time.RFC3339Nano))
	}
}

// lapse is how a handler's context ended under a lease: the lease's epoch
// and the context's cause.
type lapse struct {
	epoch int64
	cause error
}

// waitLapse waits for a handler to report its context's end, failing the
// test if it never does.
func waitLapse(t *testing.T, c <-chan lapse) lapse {
	t.Helper()
	select {
	case l := <-c:
		return l
	case <-time.After(3 * time.Minute):
		t.Fatal("timed out after 3m0s waiting for the handler's context to be cancelled")
		return lapse{}
	}
}

// testPartitionedSubscription: partitions split the work between replicas;
// each event is handled once, each stream stays in one partition, in order.
func testPartitionedSubscription(t *testing.T, b Backend) {
	s := b.Store
	var h handled
	sub := eventstore.Subscription{Name: "partitioned", Partitions: 4, Read: eventstore.ReadOptions{BatchSize: 10}}
	// Leases that outlast any stall of a loaded machine: a lease that
	// expired would hand its partition over and, at least once, repeat
	// the batches after the checkpoint, which this test counts as a
	// failure. Takeover is RunnerTakeover's subject.
	startReplica(t, s, "p1", time.Minute, sub, &h)
	startReplica(t, s, "p2", time.Minute, sub, &h)
	for i := range 200 {
		mustAppend(t, s, fmt.Sprintf("part-%d", i%20), eventstore.Any, ev("P", i))
	}
	eventually(t, "every event", func() bool { return h.count() >= 200 })
	h.mu.Lock()
	defer h.mu.Unlock()
	checkPerStreamOrder(t, "partitioned subscription", h.events, 200)
	partOf := map[string]int{}
	for i, e := range h.events {
		p := h.parts[i]
		if p != eventstore.PartitionOf(e.StreamID, 4) {
			t.Fatalf("stream %s handled in partition %d", e.StreamID, p)
		}
		if q, ok := partOf[e.StreamID]; ok && q != p {
			t.Fatalf("stream %s split over partitions %d and %d", e.StreamID, q, p)
		}
		partOf[e.StreamID] = p
	}
}

// testHandEmptyBatches: with HandlerSavesCheckpoint and HandEmptyBatches
// the handler is handed the reads that hold no event of its partition, as
// batches without events, and the runner never stores the checkpoint: a
// handler that does not store it leaves it where it was.
func testHandEmptyBatches(t *testing.T, b Backend) {
	s := b.Store
	var mu sync.Mutex
	var empty []eventstore.Position // the empty batches' checkpoints
	sub := eventstore.Subscription{Name: "empty-batches", Partitions: 2, HandlerSavesCheckpoint: true, HandEmptyBatches: true,
		Handler: func(_ context.Context, b eventstore.Batch) error {
			mu.Lock()
			defer mu.Unlock()
			if len(b.Events) == 0 {
				empty = append(empty, b.Checkpoint.Position)
			}
			return nil
		}}
	stream := "empty-0"
	for i := 1; eventstore.PartitionOf(stream, 2) != 0; i++ {
		stream = fmt.Sprintf("empty-%d", i)
	}
	startReplica(t, s, "e1", time.Minute, sub, &handled{})
	last := mustAppend(t, s, stream, eventstore.Any, ev("E", 0), ev("E", 1)).Positions[1]
	key := eventstore.CheckpointKey{Subscription: sub.Name, Partition: 1}
	var cp eventstore.Position
	eventually(t, "partition 1 handed the read of partition 0's events, or its checkpoint stored", func() bool {
		var err error
		if cp, err = s.Checkpoint(ctx(t), key); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		defer mu.Unlock()
		return cp != (eventstore.Position{}) || len(empty) > 0 && !empty[len(empty)-1].Less(last)
	})
	if cp != (eventstore.Position{}) {
		t.Fatalf("partition 1's checkpoint stored at %s by the runner, want it left to the handler", cp)
	}
}

func testLag(t *testing.T, b Backend) {
	s := b.Store
	key := eventstore.CheckpointKey{Subscription: "lag"}
	if lag, err := eventstore.SubscriptionLag(ctx(t), s, key); err != nil || lag != (eventstore.Lag{}) {
		t.Fatalf("lag of an empty log = %+v, %v", lag, err)
	}
	appendN(t, s, 5)
	readAll(t, s) // settle: every event is readable
	lag, err := eventstore.SubscriptionLag(ctx(t), s, key)
	if err != nil || lag.Events < 5 {
		t.Fatalf("lag = %+v, %v; want at least 5 events", lag, err)
	}
	head, _, err := s.Head(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SaveCheckpoint(ctx(t), key, 0, head); err != nil {
		t.Fatal(err)
	}
	if lag, err := eventstore.SubscriptionLag(ctx(t), s, key); err != nil || lag != (eventstore.Lag{}) {
		t.Fatalf("lag when up to date = %+v, %v", lag, err)
	}
}

// afterCheckpoint counts the events after a position.
func afterCheckpoint(t *testing.T, s eventstore.Store, cp eventstore.Position) int {
	n := 0
	for _, e := range readAll(t, s) {
		if cp.Less(e.Position) {
			n++
		}
	}
	return n
}

func indexOf(ids []uuid.UUID, id uuid.UUID) int {
	for i, x := range ids {
		if x == id {
			return i
		}
	}
	return -1
}

func equalIDs(a, b []uuid.UUID) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// testReclaimsUnreleasedLease: a runner whose handler failed and whose
// lease release did not get through (the database was down, say) takes
// its lease back by renewing it, instead of waiting for it to expire.
func testReclaimsUnreleasedLease(t *testing.T, b Backend) {
	s := b.Store
	appendN(t, s, 6)
	var h handled
	var calls atomic.Int32
	f := &faulty{Store: s}
	sub := eventstore.Subscription{Name: "reclaim", Read: eventstore.ReadOptions{BatchSize: 2}}
	sub.Handler = func(context.Context, eventstore.Batch) error {
		if calls.Add(1) == 1 {
			f.noRelease.Store(true) // the release after this failure is lost
			return errors.New("storetest: the handler failed once")
		}
		f.noRelease.Store(false)
		return nil
	}
	// A lease that outlives the test: only taking it back lets the
	// runner go on.
	startFaultyReplica(t, f, "reclaimer", time.Hour, sub, &h)
	eventually(t, "the runner to go on after the failed release", func() bool { return h.count() >= 2+6 })
}
