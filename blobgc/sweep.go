package blobgc

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/imageservice/imageservice/blobstore"
	"github.com/imageservice/imageservice/eventstore"
)

// Report is the outcome of one sweep.
type Report struct {
	// Cutoff: blobs last put before it were candidates.
	Cutoff time.Time
	// Candidates counts the blobs listed (last put before the cutoff).
	Candidates int
	// InUse counts the candidates kept because a live image uses them.
	InUse int
	// Purged and Bytes count the blobs removed and their size.
	Purged int
	Bytes  int64
}

// Sweep runs one sweep now, whether or not another replica holds the
// lease (sweeps running at once are safe, merely wasteful), and reports
// what it did. On an error it stops; what it purged until then stays
// purged and recorded.
func (s *Sweeper) Sweep(ctx context.Context) (Report, error) {
	return s.sweep(ctx, func(context.Context) error { return nil })
}

// sweep is Sweep, calling between pages keep, which fails when the sweep
// must stop (its lease was lost).
func (s *Sweeper) sweep(ctx context.Context, keep func(context.Context) error) (Report, error) {
	now, err := s.o.Now(ctx)
	if err != nil {
		return Report{}, fmt.Errorf("sweep blobs: read the clock: %w", err)
	}
	r := Report{Cutoff: now.Add(-s.o.Retention)}
	blobs, err := s.o.Blobs.Keys(ctx, r.Cutoff, "", s.o.PageSize)
	if err != nil {
		return r, fmt.Errorf("sweep blobs: %w", err)
	}
	if len(blobs) == 0 {
		return r, nil // nothing to decide: no marker, no wait
	}
	if err := s.catchUp(ctx, r.Cutoff); err != nil {
		return r, err
	}
	for {
		if err := s.purgePage(ctx, blobs, &r); err != nil {
			return r, err
		}
		if len(blobs) < s.o.PageSize {
			return r, nil
		}
		if err := keep(ctx); err != nil {
			return r, err
		}
		if blobs, err = s.o.Blobs.Keys(ctx, r.Cutoff, blobs[len(blobs)-1].Key, s.o.PageSize); err != nil {
			return r, fmt.Errorf("sweep blobs: %w", err)
		}
	}
}

// catchUp appends the sweep's marker and waits until the read model has
// folded the log in up to it.
func (s *Sweeper) catchUp(ctx context.Context, cutoff time.Time) error {
	res, err := s.append(ctx, TypeSweepStarted, SweepStarted{Cutoff: cutoff, Retention: s.o.Retention.String()})
	if err != nil {
		return fmt.Errorf("sweep blobs: mark the start: %w", err)
	}
	pos := res.Positions[len(res.Positions)-1]
	wctx, cancel := context.WithTimeout(ctx, s.o.WaitTimeout)
	defer cancel()
	if err := s.o.WaitFor(wctx, pos); err != nil {
		return fmt.Errorf("sweep blobs: wait for the read model to reach the sweep's start at %s: %w", pos, err)
	}
	return nil
}

// purgePage purges the unused blobs of one page and records them.
func (s *Sweeper) purgePage(ctx context.Context, blobs []blobstore.Blob, r *Report) error {
	done := BlobsPurged{Cutoff: r.Cutoff, Keys: []string{}}
	var err error
	for _, b := range blobs {
		r.Candidates++
		var purged bool
		if purged, err = s.purgeUnused(ctx, b.Key, r); err != nil {
			break
		}
		if purged {
			done.Keys, done.Bytes = append(done.Keys, b.Key), done.Bytes+b.Size
		}
	}
	r.Purged += len(done.Keys)
	r.Bytes += done.Bytes
	if len(done.Keys) > 0 {
		// Recorded even when the page stopped short: these are gone.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if _, aerr := s.append(rctx, TypeBlobsPurged, done); aerr != nil && err == nil {
			err = fmt.Errorf("sweep blobs: record %d purged blobs: %w", len(done.Keys), aerr)
		}
	}
	return err
}

// purgeUnused purges key if no live image uses it.
func (s *Sweeper) purgeUnused(ctx context.Context, key string, r *Report) (bool, error) {
	use, err := s.o.Users.BlobUse(ctx, key)
	if err != nil {
		return false, fmt.Errorf("sweep blobs: %w", err)
	}
	if use.Live > 0 {
		r.InUse++
		return false, nil
	}
	purged, err := s.o.Blobs.Purge(ctx, key, r.Cutoff)
	if err != nil {
		return false, fmt.Errorf("sweep blobs: %w", err)
	}
	return purged, nil
}

// append adds one event of the sweeper's to its stream.
func (s *Sweeper) append(ctx context.Context, typ string, data any) (eventstore.AppendResult, error) {
	raw, err := json.Marshal(data)
	if err != nil {
		return eventstore.AppendResult{}, fmt.Errorf("encode %s: %w", typ, err)
	}
	return s.o.Store.Append(ctx, Stream, eventstore.Any, eventstore.NewEvent{
		ID: eventstore.NewEventID(), Type: typ, SchemaVersion: 1, Data: raw,
		Metadata: eventstore.Metadata{Actor: Actor},
	})
}
