package processors

import (
	"context"
	"fmt"
	"time"
)

// Stats are the job queue's numbers, for metrics and operators.
type Stats struct {
	// Queued jobs wait for a worker (available or scheduled for later).
	Queued int64
	// Running jobs are being worked on.
	Running int64
	// Retrying jobs failed an attempt and wait for the next.
	Retrying int64
	// Failed jobs were given up (discarded or cancelled).
	Failed int64
	// Completed jobs are done (kept by River for a day).
	Completed int64
	// DitherP50 and DitherP95 are the processing times of the dithers
	// completed in the last hour.
	DitherP50, DitherP95 time.Duration
}

// Stats reads the job queue's numbers.
func (p *Processors) Stats(ctx context.Context) (Stats, error) {
	var s Stats
	var p50, p95 float64
	err := p.store.Pool().QueryRow(ctx, `SELECT
		count(*) FILTER (WHERE state IN ('available', 'scheduled', 'pending')),
		count(*) FILTER (WHERE state = 'running'),
		count(*) FILTER (WHERE state = 'retryable'),
		count(*) FILTER (WHERE state IN ('discarded', 'cancelled')),
		count(*) FILTER (WHERE state = 'completed'),
		coalesce(percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM finalized_at - attempted_at))
			FILTER (WHERE kind = 'dither' AND state = 'completed' AND finalized_at > now() - interval '1 hour'), 0),
		coalesce(percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM finalized_at - attempted_at))
			FILTER (WHERE kind = 'dither' AND state = 'completed' AND finalized_at > now() - interval '1 hour'), 0)
		FROM river_job`).Scan(&s.Queued, &s.Running, &s.Retrying, &s.Failed, &s.Completed, &p50, &p95)
	if err != nil {
		return Stats{}, fmt.Errorf("job queue stats: %w", err)
	}
	s.DitherP50 = time.Duration(p50 * float64(time.Second))
	s.DitherP95 = time.Duration(p95 * float64(time.Second))
	return s, nil
}
