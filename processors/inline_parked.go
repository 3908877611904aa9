package processors

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/imageservice/imageservice/eventstore"
)

// partition is the inline processor's state of one partition while this
// process holds its lease (one epoch): where the handler is, the parked
// dithers, and the goroutine that retries them.
type partition struct {
	key   eventstore.CheckpointKey
	epoch int64
	stop  context.CancelFunc // stops the retry goroutine
	done  chan struct{}      // closed when it has returned
	wake  chan struct{}      // tells it that a dither was parked

	mu     sync.Mutex
	last   eventstore.Position // the last position handled (every event up to it is done or parked)
	saved  eventstore.Position // the checkpoint last stored
	parked []parked            // in log order
}

// parked is a dither waiting for another attempt.
type parked struct {
	e    eventstore.Event
	args DitherArgs
	// before is the position handled last before e: the checkpoint from
	// which the runner hands e over again.
	before eventstore.Position
}

// partition returns the state of the batch's partition. The first batch
// of a lease sets it up anew: the retry goroutine of the previous lease is
// stopped and its parked dithers forgotten (the partition resumes from its
// checkpoint, before the oldest of them, and parks them again), and a new
// one is started, on ctx, which lives as long as the lease
// (Subscription.Handler).
func (p *Inline) partition(ctx context.Context, cp eventstore.Checkpoint) (*partition, error) {
	old := p.parts[cp.Key.Partition]
	if old != nil && old.epoch == cp.Epoch {
		return old, nil
	}
	if old != nil {
		old.stop()
		<-old.done
	}
	from, err := p.store.Checkpoint(ctx, cp.Key)
	if err != nil {
		return nil, fmt.Errorf("load checkpoint %s: %w", cp.Key, err)
	}
	part := &partition{key: cp.Key, epoch: cp.Epoch, last: from, saved: from,
		done: make(chan struct{}), wake: make(chan struct{}, 1)}
	rctx, stop := context.WithCancel(ctx)
	part.stop = stop
	p.parts[cp.Key.Partition] = part
	p.wg.Go(func() {
		defer close(part.done)
		p.retryParked(rctx, part)
	})
	return part, nil
}

// handled records that every event of the partition up to pos is done or
// parked.
func (part *partition) handled(pos eventstore.Position) {
	part.mu.Lock()
	defer part.mu.Unlock()
	part.last = pos
}

// park adds a dither, the event after the last handled, to the parked
// ones, and wakes the retry goroutine.
func (part *partition) park(e eventstore.Event, args DitherArgs) {
	part.mu.Lock()
	part.parked = append(part.parked, parked{e: e, args: args, before: part.last})
	part.mu.Unlock()
	select {
	case part.wake <- struct{}{}:
	default:
	}
}

// unpark removes a dither from the parked ones.
func (part *partition) unpark(args DitherArgs) {
	part.mu.Lock()
	defer part.mu.Unlock()
	part.parked = slices.DeleteFunc(part.parked, func(d parked) bool { return d.args == args })
}

// parkedNow returns the parked dithers, oldest first.
func (part *partition) parkedNow() []parked {
	part.mu.Lock()
	defer part.mu.Unlock()
	return slices.Clone(part.parked)
}

// saveCheckpoint stores the partition's checkpoint, fenced by its lease:
// just before the oldest parked dither, or the last position handled when
// none is parked.
func (p *Inline) saveCheckpoint(ctx context.Context, part *partition) error {
	part.mu.Lock()
	defer part.mu.Unlock()
	pos := part.last
	if len(part.parked) > 0 {
		pos = part.parked[0].before
	}
	if pos == part.saved {
		return nil
	}
	if err := p.store.SaveCheckpoint(ctx, part.key, part.epoch, pos); err != nil {
		return fmt.Errorf("save checkpoint %s at %s: %w", part.key, pos, err)
	}
	part.saved = pos
	return nil
}

// retryParked tries the partition's parked dithers again as they come
// due, until ctx ends, and moves the checkpoint on past each that ends.
func (p *Inline) retryParked(ctx context.Context, part *partition) {
	for {
		if err := p.waitDue(ctx, part); err != nil {
			return
		}
		if err := p.retryDue(ctx, part); err != nil {
			return
		}
	}
}

// waitDue waits until the first parked dither is due, or another is
// parked, or ctx ends (the error).
func (p *Inline) waitDue(ctx context.Context, part *partition) error {
	var due <-chan time.Time // nil, nothing parked: wait for a wake-up
	if next, ok := p.nextDue(part); ok {
		t := time.NewTimer(time.Until(next))
		defer t.Stop()
		due = t.C
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-part.wake:
	case <-due:
	}
	return nil
}

// nextDue returns when the first of the parked dithers is due.
func (p *Inline) nextDue(part *partition) (time.Time, bool) {
	var next time.Time
	found := false
	for _, d := range part.parkedNow() {
		if t, _ := p.triesOf(d.args); !found || t.due.Before(next) {
			next, found = t.due, true
		}
	}
	return next, found
}

// retryDue makes the next attempt at each parked dither that is due, and
// stores the checkpoint once one ended. It returns an error when the
// partition stops.
func (p *Inline) retryDue(ctx context.Context, part *partition) error {
	for _, d := range part.parkedNow() {
		if t, _ := p.triesOf(d.args); time.Now().Before(t.due) {
			continue
		}
		ended, err := p.attempt(ctx, d.e, d.args)
		if err != nil {
			return err
		}
		if !ended {
			continue
		}
		part.unpark(d.args)
		if err := p.saveCheckpoint(ctx, part); err != nil && !errors.Is(err, eventstore.ErrLeaseLost) {
			// The next batch or ended dither stores it.
			p.worker.Logger.WarnContext(ctx, "store the checkpoint after a parked dither", "err", err)
		}
	}
	return nil
}
