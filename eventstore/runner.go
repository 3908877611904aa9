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
	// handed over again, after a back-off, from the last checkpoint.
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
	HandlerSavesCheckpoint bool
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
	// The holder renews it every third of that; another replica takes
	// over at most LeaseTTL after the holder stops renewing.
	LeaseTTL time.Duration
	// Logger receives errors that the runner retries (default slog.Default()).
	Logger *slog.Logger
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
		var err error
		lease, kept, err = r.takeLease(ctx, key, kept)
		if err == nil {
			kept, err = r.holdLease(ctx, sub, lease, n)
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
// this runner's that it could not release. It returns the lease, what is
// still kept (kept again after a transient error renewing it) and the
// error.
func (r *Runner) takeLease(ctx context.Context, key CheckpointKey, kept *Lease) (Lease, *Lease, error) {
	if kept != nil {
		lease, err := r.Store.RenewLease(ctx, *kept, r.LeaseTTL)
		if err == nil {
			return lease, nil, nil
		}
		if !errors.Is(err, ErrLeaseLost) {
			return Lease{}, kept, err
		}
	}
	lease, err := r.Store.AcquireLease(ctx, key, r.Holder, r.LeaseTTL)
	return lease, nil, err
}

// holdLease follows the log while renewing the lease, until the lease is
// lost, ctx ends or the handler fails; then it releases the lease. It
// returns the lease as well when it could not release it.
func (r *Runner) holdLease(ctx context.Context, sub Subscription, lease Lease, n int) (*Lease, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	wg.Go(func() { r.renew(ctx, cancel, lease) })
	err := r.follow(ctx, sub, lease, n)
	cancel(err)
	wg.Wait()
	if cause := context.Cause(ctx); errors.Is(cause, ErrLeaseLost) {
		return nil, cause
	}
	relCtx, relCancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer relCancel()
	if rerr := r.Store.ReleaseLease(relCtx, lease); rerr != nil {
		r.Logger.Warn("release lease; renewing it instead of waiting for it to expire", "subscription", lease.Key.String(), "err", rerr)
		return &lease, err
	}
	return nil, err
}

// renew extends the lease every third of its TTL and cancels the
// partition's context with ErrLeaseLost when renewal is refused.
func (r *Runner) renew(ctx context.Context, cancel context.CancelCauseFunc, lease Lease) {
	t := time.NewTicker(r.LeaseTTL / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		renewed, err := r.Store.RenewLease(ctx, lease, r.LeaseTTL)
		switch {
		case errors.Is(err, ErrLeaseLost):
			cancel(fmt.Errorf("renew %s: %w", lease.Key, err))
			return
		case err != nil:
			// A transient error: try again at the next tick, while the
			// lease may still be valid; the fenced checkpoint protects us.
			r.Logger.Warn("renew lease", "subscription", lease.Key.String(), "err", err)
		default:
			lease = renewed
		}
	}
}

// follow hands the partition's batches to the handler and checkpoints them.
func (r *Runner) follow(ctx context.Context, sub Subscription, lease Lease, n int) error {
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
		if s.read == 0 {
			return cps.flush(ctx) // caught up after a full batch: nothing new to handle
		}
		if len(s.events) > 0 {
			cp := Checkpoint{Key: lease.Key, Epoch: lease.Epoch, Position: s.next}
			if err := sub.Handler(ctx, Batch{Events: s.events, Checkpoint: cp, Prepared: s.prepared}); err != nil {
				return fmt.Errorf("handle %d events of %s: %w", len(s.events), lease.Key, err)
			}
			if sub.HandlerSavesCheckpoint {
				cps.handlerSaved()
				return nil
			}
		}
		return cps.handled(ctx, s.next, s.caughtUp)
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
