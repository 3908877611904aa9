package eventstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// Subscription is a named, checkpointed reader of the log whose handler
// runs on one replica at a time for each partition.
type Subscription struct {
	// Name identifies the subscription's checkpoints and leases.
	Name string
	// Partitions splits the work by stream hash (default 1). Each
	// partition has its own lease and checkpoint, so partitions of one
	// subscription can run on different replicas.
	Partitions int
	// Handler handles each batch. When it returns an error the batch is
	// handed over again, after a back-off, from the last checkpoint. Its
	// ctx is cancelled when the partition stops: when the runner stops, or
	// when the lease is lost (a renewal was refused, or the lease's local
	// deadline passed without one; see Runner.LeaseTTL) and another
	// replica may soon take the partition over. A handler with side
	// effects should give up then: what it does afterwards may overlap
	// with the work of the replica that takes over, or be repeated by it.
	// The ctx is the same for every batch of one lease, so work that the
	// handler goes on with in the background may be tied to it.
	Handler func(ctx context.Context, b Batch) error
	// Prepare, when set, is called with each batch's events, in log order,
	// before Handler receives them; what it returns is the batch's
	// Prepared. With Read.ReadAhead it runs on a goroutine of its own, so
	// that preparing the next batch (decoding, say) overlaps handling the
	// current one and reading the one after; it never runs concurrently
	// with itself within a partition. A prepared batch may never reach Handler (the handler
	// failed, the lease was lost, the runner stopped) and is then prepared
	// again after the restart from the checkpoint, so Prepare must have no
	// effect beyond what it returns and its own caches. An error stops the
	// partition as a handler error does.
	Prepare func(ctx context.Context, events []Event) (any, error)
	// HandlerSavesCheckpoint says that Handler stores b.Checkpoint itself,
	// in the same transaction as its own writes (a projection, say), with
	// the backend's fenced checkpoint write. Otherwise the runner stores
	// it after Handler succeeds, so a batch is handled at least once.
	// Even so, the runner stores the checkpoint of a read that holds no
	// event of the partition, unless HandEmptyBatches is set.
	HandlerSavesCheckpoint bool
	// HandEmptyBatches, with HandlerSavesCheckpoint, hands over the reads
	// that hold no event of the partition too, as batches without events,
	// so that the handler alone moves the checkpoint: one that holds it
	// back before work it has not finished (the inline processor's
	// dithers waiting for another attempt) would otherwise see it move
	// past that work. Ignored without HandlerSavesCheckpoint.
	HandEmptyBatches bool
	// CheckpointInterval, when positive, lets the runner store the
	// checkpoint at most this often while the partition catches up
	// (batches come back full), instead of after every batch. It still
	// stores it as soon as a read comes back short (the partition caught
	// up, including the empty read after a catch-up that ended on a full
	// batch), and before the partition stops (the context ends, the lease
	// is lost, or the handler or a read fails): only ever the position
	// after the last batch the handler succeeded with, and always fenced
	// by the lease epoch. A replica that dies without stopping leaves its
	// successor to repeat at most the batches of one interval. Ignored
	// with HandlerSavesCheckpoint.
	CheckpointInterval time.Duration
	// Read tunes reading; its partition fields are set by the runner.
	Read ReadOptions
}

// Batch is what a subscription handler receives: its partition's events
// and the checkpoint to store once they are handled.
type Batch struct {
	Events     []Event
	Checkpoint Checkpoint
	// Prepared is what Subscription.Prepare returned for the events (nil
	// without Prepare).
	Prepared any
}

// Checkpoint is a fenced checkpoint write: the partition, the epoch of the
// lease under which the batch was read, and the position after the batch.
type Checkpoint struct {
	Key      CheckpointKey
	Epoch    int64
	Position Position
}

// Runner runs subscriptions under leases.
type Runner struct {
	// Store is the log and the home of checkpoints and leases.
	Store Store
	// Holder names this replica in leases (default: host, pid and a random suffix).
	Holder string
	// LeaseTTL is how long a lease lasts without renewal (default 15 s).
	// The holder renews it every third of that, and retries a renewal
	// that failed after a short back-off (a thirtieth of the TTL,
	// doubling up to a sixth); another replica takes over at most
	// LeaseTTL after the holder stops renewing.
	//
	// The store times leases on its own clock (the database's), so the
	// runner also keeps a local deadline for each lease it holds: nine
	// tenths of LeaseTTL after it sent the call that granted or last
	// renewed the lease, on this process's clock. The store starts the
	// TTL no earlier than that call was sent, so the lease expires in the
	// store a tenth of the TTL after the local deadline at the earliest;
	// that margin covers clocks running at slightly different rates and
	// a handler noticing its cancelled context. When the local deadline
	// passes without a renewal (the store cannot be reached, or the
	// process was paused), the partition stops as when a renewal is
	// refused: no batch is handed over after it, the handler's context is
	// cancelled with a cause that wraps ErrLeaseLost, and the runner
	// competes for the lease again. A renewal still in flight is given up
	// at the deadline. The runner keeps its leases with a LeaseKeeper,
	// which work under a lease of its own can use too.
	LeaseTTL time.Duration
	// Logger receives errors that the runner retries (default slog.Default()).
	Logger *slog.Logger
	// OnLease, when set, is called each time a partition is granted its
	// lease or a renewal of it, with the lease and the local deadline the
	// runner keeps for it (see LeaseTTL). It is called from each
	// partition's goroutines and must not block. For tests and diagnostics.
	OnLease func(l Lease, deadline time.Time)
}

// Run runs the subscription's partitions until ctx ends, taking each
// partition's lease when it is free and following the log from the
// partition's checkpoint while it holds the lease. It returns ctx's error
// once every partition has stopped and released its lease.
func (r *Runner) Run(ctx context.Context, sub Subscription) error {
	if sub.Name == "" || sub.Handler == nil {
		return errors.New("run subscription: a name and a handler are required")
	}
	r = r.withDefaults() // a copy: one Runner may run several subscriptions at once
	n := max(sub.Partitions, 1)
	var wg sync.WaitGroup
	for p := range n {
		wg.Go(func() { r.runPartition(ctx, sub, CheckpointKey{sub.Name, p}, n) })
	}
	wg.Wait()
	return ctx.Err()
}

func (r *Runner) withDefaults() *Runner {
	c := *r
	r = &c
	if r.Holder == "" {
		r.Holder = DefaultHolder()
	}
	if r.LeaseTTL <= 0 {
		r.LeaseTTL = 15 * time.Second
	}
	if r.Logger == nil {
		r.Logger = slog.Default()
	}
	return r
}

// DefaultHolder returns a lease holder name unique to this process.
func DefaultHolder() string {
	host, _ := os.Hostname()
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}

// runPartition loops: take the lease, run while it is held, back off.
func (r *Runner) runPartition(ctx context.Context, sub Subscription, key CheckpointKey, n int) {
	log := r.Logger.With("subscription", key.String(), "holder", r.Holder)
	// A handler that keeps failing is retried after 50 ms, doubling up to
	// 30 s; losing the lease starts over at once.
	backoff := newBackoff(50*time.Millisecond, 30*time.Second)
	// kept is a lease this runner failed to release (the store was down,
	// say): no one else can take it before it expires, so it is taken
	// back by renewing it rather than waiting for that.
	var kept *Lease
	for ctx.Err() == nil {
		var lease Lease
		var sent time.Time
		var err error
		lease, sent, kept, err = r.takeLease(ctx, key, kept)
		if err == nil {
			kept, err = r.holdLease(ctx, sub, lease, sent, n)
			if errors.Is(err, ErrLeaseLost) {
				backoff.reset()
			}
		}
		if err != nil && !errors.Is(err, ErrLeaseHeld) && ctx.Err() == nil {
			log.Warn("subscription partition stopped; retrying", "err", err)
		}
		delay := backoff.next()
		if errors.Is(err, ErrLeaseHeld) {
			backoff.reset()
			delay = r.LeaseTTL / 3
		}
		_, _ = wait(ctx, nil, delay)
	}
}

// takeLease acquires the partition's lease, or renews kept, a lease of
// this runner's that it could not release. It returns the lease, the
// local time taken before the call that granted it was sent, what is
// still kept (kept again after a transient error renewing it) and the
// error.
func (r *Runner) takeLease(ctx context.Context, key CheckpointKey, kept *Lease) (Lease, time.Time, *Lease, error) {
	sent := time.Now()
	if kept != nil {
		lease, err := r.Store.RenewLease(ctx, *kept, r.LeaseTTL)
		if err == nil {
			return lease, sent, nil, nil
		}
		if !errors.Is(err, ErrLeaseLost) {
			return Lease{}, time.Time{}, kept, err
		}
		sent = time.Now()
	}
	lease, err := r.Store.AcquireLease(ctx, key, r.Holder, r.LeaseTTL)
	if err != nil {
		return Lease{}, time.Time{}, nil, err
	}
	return lease, sent, nil, nil
}

// keeper returns the LeaseKeeper of the runner's leases.
func (r *Runner) keeper() LeaseKeeper {
	return LeaseKeeper{Store: r.Store, TTL: r.LeaseTTL, Logger: r.Logger, OnLease: r.OnLease}
}

// holdLease follows the log while keeping the lease, which a call sent at
// sent granted, until the lease is lost (or its local deadline passes),
// ctx ends or the handler fails; then it releases the lease, unless lost.
// It returns the lease as well when it could not release it.
func (r *Runner) holdLease(ctx context.Context, sub Subscription, lease Lease, sent time.Time, n int) (*Lease, error) {
	ctx, kl := r.keeper().Keep(ctx, lease, sent)
	err := r.follow(ctx, sub, kl, n)
	if lost := kl.Stop(err); lost != nil {
		return nil, lost
	}
	lease = kl.Lease()
	relCtx, relCancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer relCancel()
	if rerr := r.Store.ReleaseLease(relCtx, lease); rerr != nil {
		r.Logger.Warn("release lease; renewing it instead of waiting for it to expire", "subscription", lease.Key.String(), "err", rerr)
		return &lease, err
	}
	return nil, err
}

// follow hands the partition's batches to the handler, while the lease is
// held, and checkpoints them.
func (r *Runner) follow(ctx context.Context, sub Subscription, kl *KeptLease, n int) error {
	lease := kl.Lease()
	from, err := r.Store.Checkpoint(ctx, lease.Key)
	if err != nil {
		return fmt.Errorf("load checkpoint %s: %w", lease.Key, err)
	}
	opts := sub.Read
	opts.Partitions, opts.Partition = n, lease.Key.Partition
	cps := &checkpointer{store: r.Store, key: lease.Key, epoch: lease.Epoch, saved: time.Now()}
	if !sub.HandlerSavesCheckpoint {
		cps.interval = sub.CheckpointInterval
	}
	err = followSteps(ctx, r.Store, from, opts, sub.Prepare, func(ctx context.Context, s step) error {
		return handStep(ctx, sub, kl, cps, s)
	})
	// Store what was handled but not yet checkpointed, even when ctx has
	// ended: the write is fenced, so it fails if the lease was lost.
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if ferr := cps.flush(fctx); ferr != nil && !errors.Is(ferr, ErrLeaseLost) {
		r.Logger.Warn("store the checkpoint on stopping", "subscription", lease.Key.String(), "err", ferr)
	}
	return err
}

// handStep hands a step's events, if any, to the handler while the lease
// is held, and records them with the checkpointer.
func handStep(ctx context.Context, sub Subscription, kl *KeptLease, cps *checkpointer, s step) error {
	if s.read == 0 {
		return cps.flush(ctx) // caught up after a full batch: nothing new to handle
	}
	if len(s.events) > 0 || sub.HandlerSavesCheckpoint && sub.HandEmptyBatches {
		if err := kl.Err(); err != nil {
			return err // the partition stops, or the lease was lost: hand nothing over
		}
		cp := Checkpoint{Key: cps.key, Epoch: cps.epoch, Position: s.next}
		if err := sub.Handler(ctx, Batch{Events: s.events, Checkpoint: cp, Prepared: s.prepared}); err != nil {
			return fmt.Errorf("handle %d events of %s: %w", len(s.events), cps.key, err)
		}
		if sub.HandlerSavesCheckpoint {
			cps.handlerSaved()
			return nil
		}
	}
	return cps.handled(ctx, s.next, s.caughtUp)
}

// checkpointer stores a partition's checkpoint after every batch, or with
// an interval, at most that often while catching up.
type checkpointer struct {
	store    Store
	key      CheckpointKey
	epoch    int64
	interval time.Duration
	pending  Position // handled, not yet stored, when dirty
	dirty    bool
	saved    time.Time // when the checkpoint was last stored
}

// handled records that everything up to pos was handled and stores it
// when it is due: without an interval, once caught up, or once the
// interval has passed since the last write.
func (c *checkpointer) handled(ctx context.Context, pos Position, caughtUp bool) error {
	c.pending, c.dirty = pos, true
	if c.interval <= 0 || caughtUp || time.Since(c.saved) >= c.interval {
		return c.flush(ctx)
	}
	return nil
}

// handlerSaved forgets the pending position: the handler stored a later one.
func (c *checkpointer) handlerSaved() { c.dirty = false }

// flush stores the pending position, if any.
func (c *checkpointer) flush(ctx context.Context) error {
	if !c.dirty {
		return nil
	}
	if err := c.store.SaveCheckpoint(ctx, c.key, c.epoch, c.pending); err != nil {
		return fmt.Errorf("save checkpoint %s at %s: %w", c.key, c.pending, err)
	}
	c.dirty, c.saved = false, time.Now()
	return nil
}

// backoff is an exponential back-off between lo and hi.
type backoff struct{ lo, hi, d time.Duration }

func newBackoff(lo, hi time.Duration) *backoff { return &backoff{lo: lo, hi: max(hi, lo), d: lo} }

func (b *backoff) reset() { b.d = b.lo }

func (b *backoff) next() time.Duration {
	d := b.d
	b.d = min(b.d*2, b.hi)
	return d
}
