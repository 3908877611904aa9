package eventstore

import (
	"context"
	"fmt"
	"hash/fnv"
	"sync"
	"time"
)

// Signal is a broadcast wake-up for backends to implement Store.Changed:
// every channel handed out by C is closed by the next Notify. The zero
// Signal is ready to use.
type Signal struct {
	mu sync.Mutex
	ch chan struct{}
}

// C returns a channel that the next Notify closes.
func (s *Signal) C() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ch == nil {
		s.ch = make(chan struct{})
	}
	return s.ch
}

// Notify wakes everyone waiting on a channel from C.
func (s *Signal) Notify() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ch != nil {
		close(s.ch)
		s.ch = nil
	}
}

// ReadOptions tune how Follow reads the log.
type ReadOptions struct {
	// BatchSize is the most events read at once (default 500).
	BatchSize int
	// Partitions splits the log by stream hash; with Partitions > 1 only
	// the events of streams in Partition are handed over. Every event of
	// one stream is in the same partition, so per-stream order holds.
	Partitions int
	Partition  int
	// MinIdle and MaxIdle bound the polling back-off while the log is
	// idle (defaults 5 ms and 1 s). Wake-up hints cut the wait short.
	MinIdle, MaxIdle time.Duration
	// ReadAhead reads the next batch while the current one is handled, so
	// that reading the log overlaps handling: at most one batch is read
	// ahead of the one being handled (and, for a runner's subscription
	// with a Prepare step, one more being prepared). Batches are still
	// handed over one at a time, in order, on the caller's goroutine.
	ReadAhead bool
}

func (o ReadOptions) withDefaults() ReadOptions {
	if o.BatchSize <= 0 {
		o.BatchSize = 500
	}
	if o.Partitions <= 0 {
		o.Partitions = 1
	}
	if o.MinIdle <= 0 {
		o.MinIdle = 5 * time.Millisecond
	}
	if o.MaxIdle <= 0 {
		o.MaxIdle = time.Second
	}
	return o
}

// PartitionOf returns the partition, out of n, that a stream belongs to.
func PartitionOf(stream string, n int) int {
	if n <= 1 {
		return 0
	}
	h := fnv.New32a()
	h.Write([]byte(stream))
	return int(h.Sum32() % uint32(n))
}

// Follow reads the log after the position and hands each batch to fn,
// first catching up and then following live, until ctx ends or fn fails.
// next is the position to resume after once the batch is handled; with
// partitions, events of other partitions are left out, so events may be
// empty while next moves on. It reads without delay while batches come
// back full, and otherwise waits for a Changed hint or a polling interval
// that backs off from MinIdle to MaxIdle. With opts.ReadAhead the next
// batch is read while fn handles the current one.
func Follow(ctx context.Context, store Store, after Position, opts ReadOptions,
	fn func(ctx context.Context, events []Event, next Position) error) error {
	return followSteps(ctx, store, after, opts, nil, func(ctx context.Context, s step) error {
		if s.read == 0 {
			return nil // only says that the log was caught up
		}
		return fn(ctx, s.events, s.next)
	})
}

// step is one read of the log, as the follow loop hands it over.
type step struct {
	// events are the read events of the partition (maybe none of them).
	events []Event
	// next is where the following read starts.
	next Position
	// read counts the events read, before the partition's were kept.
	read int
	// caughtUp says that the read came back short: the log held no more
	// readable events, and the reader waits for it to grow before reading
	// again. A read that finds nothing right after a full batch is handed
	// over (with read == 0) for this alone, so that a catch-up that ends
	// on a full batch is seen to end.
	caughtUp bool
	// prepared is what the prepare function returned for the events.
	prepared any
}

// followSteps is Follow with every step that tells the caller something:
// reads that found events and the empty read that ends a catch-up. When
// prepare is not nil, it is called with the events of each step that has
// some, before the step is handed over. With opts.ReadAhead, reading,
// preparing and fn each run on a goroutine of their own, handing steps on
// over unbuffered channels: while fn handles one step, the next is
// prepared and the one after it read.
func followSteps(ctx context.Context, store Store, after Position, opts ReadOptions,
	prepare func(ctx context.Context, events []Event) (any, error),
	fn func(ctx context.Context, s step) error) error {
	opts = opts.withDefaults()
	read := func(ctx context.Context, emit func(ctx context.Context, s step) error) error {
		return readSteps(ctx, store, after, opts, emit)
	}
	prepared := func(emit func(ctx context.Context, s step) error) func(ctx context.Context, s step) error {
		if prepare == nil {
			return emit
		}
		return func(ctx context.Context, s step) error {
			if len(s.events) > 0 {
				var err error
				if s.prepared, err = prepare(ctx, s.events); err != nil {
					return fmt.Errorf("prepare %d events up to %s: %w", len(s.events), s.next, err)
				}
			}
			return emit(ctx, s)
		}
	}
	switch {
	case !opts.ReadAhead:
		return read(ctx, prepared(fn))
	case prepare == nil:
		return ahead(ctx, read, fn)
	}
	return ahead(ctx, func(ctx context.Context, emit func(ctx context.Context, s step) error) error {
		return ahead(ctx, read, prepared(emit))
	}, fn)
}

// ahead runs produce on a goroutine of its own and hands each step it
// emits to consume, on the caller's goroutine, over an unbuffered channel:
// produce works on the next step while consume handles the current one,
// and waits with it until consume is done. It returns consume's error, or
// produce's once every step produced before it was consumed.
func ahead(ctx context.Context, produce func(ctx context.Context, emit func(ctx context.Context, s step) error) error,
	consume func(ctx context.Context, s step) error) error {
	pctx, cancel := context.WithCancel(ctx)
	steps := make(chan step)
	var perr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(steps)
		perr = produce(pctx, func(ctx context.Context, s step) error {
			select {
			case steps <- s:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	}()
	defer func() { cancel(); <-done }()
	for s := range steps {
		if err := consume(ctx, s); err != nil {
			return err
		}
	}
	<-done
	return perr
}

// readSteps is the follow loop: read, hand over, and wait when caught up.
func readSteps(ctx context.Context, store Store, after Position, opts ReadOptions,
	fn func(ctx context.Context, s step) error) error {
	idle := opts.MinIdle
	full := false // the previous read was a full batch
	for {
		changed := store.Changed() // before reading, so no hint is missed
		batch, err := store.ReadAll(ctx, after, opts.BatchSize)
		if err != nil {
			return fmt.Errorf("follow after %s: %w", after, err)
		}
		short := len(batch) < opts.BatchSize
		if len(batch) > 0 || full {
			s := step{next: after, read: len(batch), caughtUp: short}
			if len(batch) > 0 {
				s.next = batch[len(batch)-1].Position
				s.events = filter(batch, opts)
			}
			if err := fn(ctx, s); err != nil {
				return err
			}
			after = s.next
		}
		full = !short
		if len(batch) > 0 {
			idle = opts.MinIdle
		}
		if !short {
			continue
		}
		hinted, err := wait(ctx, changed, idle)
		if err != nil {
			return err
		}
		// After a hint, poll again soon even if the read comes back empty:
		// an older transaction still open may be all that hides the event.
		idle = min(idle*2, opts.MaxIdle)
		if hinted {
			idle = opts.MinIdle
		}
	}
}

// filter keeps the events of the partition, reusing the batch's array.
func filter(batch []Event, opts ReadOptions) []Event {
	if opts.Partitions <= 1 {
		return batch
	}
	out := batch[:0]
	for _, e := range batch {
		if PartitionOf(e.StreamID, opts.Partitions) == opts.Partition {
			out = append(out, e)
		}
	}
	return out
}

// wait returns when the hint channel closes (hinted), the interval passes
// or ctx ends.
func wait(ctx context.Context, hint <-chan struct{}, d time.Duration) (hinted bool, err error) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false, ctx.Err()
	case <-hint:
		return true, nil
	case <-t.C:
		return false, nil
	}
}

// Lag is how far a subscription partition is behind the log.
type Lag struct {
	// Events approximates the number of events not yet handled, from the
	// global positions (positions of rolled-back appends count too).
	Events int64
	// Age is how long ago the oldest unhandled event was recorded; zero
	// when the partition is up to date.
	Age time.Duration
}

// SubscriptionLag reports how far a subscription partition is behind.
func SubscriptionLag(ctx context.Context, s Store, key CheckpointKey) (Lag, error) {
	cp, err := s.Checkpoint(ctx, key)
	if err != nil {
		return Lag{}, err
	}
	head, _, err := s.Head(ctx)
	if err != nil {
		return Lag{}, err
	}
	if !cp.Less(head) {
		return Lag{}, nil
	}
	next, err := s.ReadAll(ctx, cp, 1)
	if err != nil {
		return Lag{}, fmt.Errorf("lag of %s: %w", key, err)
	}
	lag := Lag{Events: max(head.Global-cp.Global, 1)}
	if len(next) == 1 {
		lag.Age = max(time.Since(next[0].RecordedAt), 0)
	}
	return lag, nil
}
