package eventstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// LeaseKeeper keeps leases that their holder was granted, on the terms
// of Runner.LeaseTTL: it renews a lease every third of its TTL, retries a
// renewal that failed after a short back-off (a thirtieth of the TTL,
// doubling up to a sixth), and keeps a local deadline for the lease, nine
// tenths of the TTL after it sent the call that granted or last renewed
// it, on this process's clock.
//
// The store times leases on its own clock, and starts a lease's TTL no
// earlier than the call that granted or renewed it was sent, so the lease
// expires in the store a tenth of the TTL after its local deadline at the
// earliest. Work done under a kept lease stops at the local deadline,
// before another holder can take the lease over, provided it gives up
// once its context is cancelled and checks KeptLease.Err before each
// step that must not happen without the lease.
//
// The Runner keeps its partitions' leases with one; work that takes a
// lease of its own (a read model's rebuild, say) keeps it with one too.
type LeaseKeeper struct {
	// Store is the home of the leases.
	Store Store
	// TTL is the TTL the leases were granted with, and renewed with
	// (default 15 s).
	TTL time.Duration
	// Logger receives the renewals that failed and are retried (default
	// slog.Default()).
	Logger *slog.Logger
	// OnLease, when set, is called when Keep starts keeping a lease and
	// each time it renews one, with the lease and its local deadline. It
	// must not block. For tests and diagnostics.
	OnLease func(l Lease, deadline time.Time)
}

// KeptLease is a lease that a LeaseKeeper keeps: see LeaseKeeper.Keep.
// Its methods are safe for concurrent use.
type KeptLease struct {
	k      LeaseKeeper
	ctx    context.Context
	cancel context.CancelCauseFunc
	done   chan struct{} // closed when the renewer has returned

	mu       sync.Mutex
	lease    Lease     // as last renewed
	deadline time.Time // its local deadline
}

// Keep keeps lease, which a call to k.Store granted or last renewed,
// sent (the local time taken just before that call was sent), until Stop
// is called. Its local deadline is nine tenths of k.TTL after sent.
//
// It returns a context derived from ctx for the work done under the
// lease. That context is cancelled, with a cause that wraps ErrLeaseLost,
// as soon as the store refuses a renewal (another holder took the lease
// over) or the local deadline passes without one getting through (the
// store cannot be reached, or the process was paused); a renewal still
// in flight is given up at the deadline. The caller must call Stop.
func (k LeaseKeeper) Keep(ctx context.Context, lease Lease, sent time.Time) (context.Context, *KeptLease) {
	if k.TTL <= 0 {
		k.TTL = 15 * time.Second
	}
	if k.Logger == nil {
		k.Logger = slog.Default()
	}
	ctx, cancel := context.WithCancelCause(ctx)
	l := &KeptLease{k: k, ctx: ctx, cancel: cancel, done: make(chan struct{})}
	l.extend(lease, sent)
	go func() {
		defer close(l.done)
		l.renew()
	}()
	return ctx, l
}

// Lease returns the lease as last renewed: the one to store fenced writes
// under, and to release once Stop has returned.
func (l *KeptLease) Lease() Lease {
	lease, _ := l.current()
	return lease
}

// Deadline returns the lease's local deadline: nine tenths of the TTL
// after the call that granted or last renewed it was sent.
func (l *KeptLease) Deadline() time.Time {
	_, deadline := l.current()
	return deadline
}

// current returns the lease as last renewed and its local deadline.
func (l *KeptLease) current() (Lease, time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lease, l.deadline
}

// Err returns nil while the work may go on under the lease: its context
// is live and its local deadline has not passed. Once the deadline has
// passed it cancels the context with a cause that wraps ErrLeaseLost and
// returns that cause; once the context has ended it returns the
// context's cause. Call it before each step that must not be taken
// without the lease: the renewer cancels the context at the deadline,
// but may be late to (the process was paused, say).
func (l *KeptLease) Err() error {
	if l.ctx.Err() != nil {
		return context.Cause(l.ctx)
	}
	lease, deadline := l.current()
	// On the monotonic clock, and on the wall clock too, which goes on
	// while a machine is suspended.
	now := time.Now()
	if now.Before(deadline) && now.Round(0).Before(deadline.Round(0)) {
		return nil
	}
	l.cancel(fmt.Errorf("lease %s (epoch %d) not renewed by its local deadline %s: %w",
		lease.Key, lease.Epoch, deadline.Format(time.RFC3339Nano), ErrLeaseLost))
	return context.Cause(l.ctx)
}

// Stop stops keeping the lease: it cancels the lease's context with
// cause (context.Canceled when nil), unless it has ended already, and
// waits for the renewer to return. It returns the context's cause when
// that wraps ErrLeaseLost (a renewal was refused, the local deadline
// passed, or cause itself wraps ErrLeaseLost), and nil otherwise. The
// lease is not released: that is up to the caller, who should not when
// it was lost.
func (l *KeptLease) Stop(cause error) error {
	l.cancel(cause)
	<-l.done
	if err := context.Cause(l.ctx); errors.Is(err, ErrLeaseLost) {
		return err
	}
	return nil
}

// extend records the lease that a call sent at sent granted or renewed,
// moving the local deadline on, and tells OnLease.
func (l *KeptLease) extend(lease Lease, sent time.Time) {
	deadline := sent.Add(l.k.TTL - l.k.TTL/10)
	l.mu.Lock()
	l.lease, l.deadline = lease, deadline
	l.mu.Unlock()
	if l.k.OnLease != nil {
		l.k.OnLease(lease, deadline)
	}
}

// renew extends the lease every third of its TTL, retrying a failed
// renewal after a short back-off, and cancels the lease's context with a
// cause that wraps ErrLeaseLost when renewal is refused or the lease's
// local deadline passes first.
func (l *KeptLease) renew() {
	ttl := l.k.TTL
	retry := newBackoff(max(ttl/30, time.Millisecond), ttl/6)
	next := ttl / 3
	for {
		if _, err := wait(l.ctx, nil, min(next, time.Until(l.Deadline()))); err != nil {
			return
		}
		if l.Err() != nil {
			return
		}
		err := l.renewOnce()
		switch {
		case l.ctx.Err() != nil:
			return
		case errors.Is(err, ErrLeaseLost):
			l.cancel(fmt.Errorf("renew %s: %w", l.Lease().Key, err))
			return
		case err != nil:
			// A transient error: try again soon, while the lease is
			// still valid, up to its local deadline.
			next = retry.next()
			l.k.Logger.Warn("renew lease; retrying", "subscription", l.Lease().Key.String(), "err", err,
				"retry_in", next, "deadline", l.Deadline())
		default:
			retry.reset()
			next = ttl / 3
		}
	}
}

// renewOnce renews the lease, giving the call up at the lease's local
// deadline or after a third of the TTL, whichever comes first, and moves
// the deadline on.
func (l *KeptLease) renewOnce() error {
	lease, deadline := l.current()
	rctx, cancel := context.WithTimeout(l.ctx, min(time.Until(deadline), l.k.TTL/3))
	defer cancel()
	sent := time.Now()
	renewed, err := l.k.Store.RenewLease(rctx, lease, l.k.TTL)
	if err != nil {
		return err
	}
	l.extend(renewed, sent)
	return nil
}
