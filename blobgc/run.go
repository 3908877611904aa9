package blobgc

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/imageservice/imageservice/eventstore"
)

// leaseKey is the sweeper's lease.
var leaseKey = eventstore.CheckpointKey{Subscription: LeaseName}

// Run sweeps every Interval until ctx ends, on one replica at a time: it
// tries to take the lease every quarter interval (at most every five
// minutes) and, when it gets it, sweeps and keeps the lease for one
// Interval after the sweep ends. Since another replica can take it only
// once it expires, the fleet sweeps about once per Interval, and a replica
// that dies leaves the next sweep to another at most one Interval later.
// It returns ctx's error.
func (s *Sweeper) Run(ctx context.Context) error {
	poll := max(min(s.o.Interval/4, 5*time.Minute), time.Second)
	for {
		s.tryOnce(ctx)
		t := time.NewTimer(poll)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// tryOnce sweeps if the lease is free, and logs the outcome.
func (s *Sweeper) tryOnce(ctx context.Context) {
	lease, err := s.o.Store.AcquireLease(ctx, leaseKey, s.o.Holder, s.o.Interval)
	if errors.Is(err, eventstore.ErrLeaseHeld) || ctx.Err() != nil {
		return
	}
	if err != nil {
		s.o.Logger.WarnContext(ctx, "blob sweep: take the lease", "err", err)
		return
	}
	start := time.Now()
	r, err := s.sweep(ctx, func(ctx context.Context) error {
		renewed, err := s.o.Store.RenewLease(ctx, lease, s.o.Interval)
		if err != nil {
			return fmt.Errorf("sweep blobs: renew the lease: %w", err)
		}
		lease = renewed
		return nil
	})
	s.report(ctx, r, time.Since(start), err)
	s.endTurn(ctx, lease, err)
}

// endTurn keeps the lease for one more Interval after a sweep, the
// schedule of the next, but gives it up when the service stops mid-sweep
// so that another replica may sweep at once.
func (s *Sweeper) endTurn(ctx context.Context, lease eventstore.Lease, err error) {
	if errors.Is(err, eventstore.ErrLeaseLost) {
		return
	}
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if ctx.Err() != nil {
		_ = s.o.Store.ReleaseLease(bctx, lease)
		return
	}
	if _, err := s.o.Store.RenewLease(bctx, lease, s.o.Interval); err != nil && !errors.Is(err, eventstore.ErrLeaseLost) {
		s.o.Logger.WarnContext(ctx, "blob sweep: keep the lease until the next sweep", "err", err)
	}
}

// report logs a sweep and tells Observe.
func (s *Sweeper) report(ctx context.Context, r Report, d time.Duration, err error) {
	if s.o.Observe != nil {
		s.o.Observe(r.Purged, r.Bytes, err)
	}
	attrs := []any{"cutoff", r.Cutoff, "candidates", r.Candidates, "in_use", r.InUse,
		"purged", r.Purged, "purged_bytes", r.Bytes, "duration", d}
	if err != nil && ctx.Err() == nil {
		s.o.Logger.ErrorContext(ctx, "blob sweep failed", append(attrs, "err", err)...)
		return
	}
	s.o.Logger.InfoContext(ctx, "blob sweep", attrs...)
}
