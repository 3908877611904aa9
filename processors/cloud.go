package processors

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/riverqueue/river"
	"go.opentelemetry.io/otel/trace"

	"github.com/imageservice/imageservice/images"
	"github.com/imageservice/imageservice/processors/cloudsync"
	"github.com/imageservice/imageservice/tracing"
)

// Cloudinary jobs: uploads of originals and results, and the clean-up of
// a deleted image's assets. Each is unique per subject and retried with
// cloudsync's back-off for more than an hour on rate limits and outages.
// A sync that fails for good (a permanent error, or a transient one on its
// last attempt) is recorded as ImageSyncFailed or DitherSyncFailed, as a
// dither's failure is, and a last attempt that cannot record it is snoozed
// (snoozeLastAttempt). A refusal of the domain (the image or dither is gone,
// or has no result yet) cancels the job: there is nothing to sync.

// SyncImageArgs uploads an image's original.
type SyncImageArgs struct {
	ImageID uuid.UUID `json:"image_id"`
}

// SyncDitherArgs uploads a completed dither's result.
type SyncDitherArgs struct {
	ImageID  uuid.UUID `json:"image_id"`
	DitherID uuid.UUID `json:"dither_id"`
}

// DestroyImageArgs removes a deleted image's assets.
type DestroyImageArgs struct {
	ImageID uuid.UUID `json:"image_id"`
}

// Kind implements river.JobArgs.
func (SyncImageArgs) Kind() string { return "cloud_sync_image" }

// Kind implements river.JobArgs.
func (SyncDitherArgs) Kind() string { return "cloud_sync_dither" }

// Kind implements river.JobArgs.
func (DestroyImageArgs) Kind() string { return "cloud_destroy_image" }

func cloudInsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: cloudQueue, MaxAttempts: cloudsync.MaxAttempts, UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

// InsertOpts makes the job unique and puts it on the cloud queue.
func (SyncImageArgs) InsertOpts() river.InsertOpts { return cloudInsertOpts() }

// InsertOpts makes the job unique and puts it on the cloud queue.
func (SyncDitherArgs) InsertOpts() river.InsertOpts { return cloudInsertOpts() }

// InsertOpts makes the job unique and puts it on the cloud queue.
func (DestroyImageArgs) InsertOpts() river.InsertOpts { return cloudInsertOpts() }

// cloudQueue keeps Cloudinary's slowness and retries away from dithering.
const cloudQueue = "cloud"

// cloudWorker runs one kind of Cloudinary job with cloudsync's retry rules.
type cloudWorker[T river.JobArgs] struct {
	river.WorkerDefaults[T]
	do func(ctx context.Context, args T) error
	// failed records that the job failed for good, at the given attempt
	// and for the given cause; nil for a job that has nothing to record
	// (a destroy: its image's stream has ended).
	failed func(ctx context.Context, args T, attempt int, cause error) error
	tracer trace.Tracer
	log    *slog.Logger
}

// Work implements river.Worker. A transient error is returned to be
// retried. A permanent error, or a transient one on the last attempt, is
// recorded as the sync's failure (with time of its own: the attempt's may
// be what ran out) and the job ends; a last attempt that cannot record it
// is tried again later (snoozeLastAttempt). A refusal of the domain cancels
// the job, as does a permanent error of a job that records nothing. A job
// that records nothing (a destroy) and still meets rate limits or outages
// on its last attempt is snoozed for destroyRetry, again and again, still
// as the last attempt: a deleted image's assets are destroyed once
// Cloudinary answers, however long that takes, not left there. An
// attempt cut short by the service stopping is handed back as it is. The
// attempt has a span, a child of the trace of the event that asked for
// the job, which the sync's event records as its trace parent.
func (w *cloudWorker[T]) Work(ctx context.Context, job *river.Job[T]) (err error) {
	ctx, span := startJob(ctx, w.tracer, job.JobRow)
	defer func() { tracing.End(span, err) }()
	err = w.do(ctx, job.Args)
	last := job.Attempt >= job.MaxAttempts
	switch {
	case err == nil, errors.Is(ctx.Err(), context.Canceled):
		return err
	case cloudsync.Retryable(err) && !last:
		return err
	case images.CodeOf(err) != "" || w.failed == nil:
		if !cloudsync.Retryable(err) {
			return river.JobCancel(err)
		}
		return snoozeLastAttempt(ctx, w.log, job.JobRow, err, destroyRetry)
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	if rerr := w.failed(rctx, job.Args, job.Attempt, err); rerr != nil {
		return snoozeLastAttempt(ctx, w.log, job.JobRow, errors.Join(err, rerr), lastAttemptSnooze)
	}
	return nil
}

// NextRetry implements river.Worker with cloudsync's back-off.
func (w *cloudWorker[T]) NextRetry(job *river.Job[T]) time.Time {
	return time.Now().Add(cloudsync.NextRetry(job.Attempt))
}

// addCloudWorkers registers the Cloudinary workers of a syncer.
func addCloudWorkers(workers *river.Workers, s *cloudsync.Syncer, tracer trace.Tracer, log *slog.Logger) {
	river.AddWorker(workers, &cloudWorker[SyncImageArgs]{tracer: tracer, log: log,
		do: func(ctx context.Context, a SyncImageArgs) error { return s.SyncImage(ctx, a.ImageID) },
		failed: func(ctx context.Context, a SyncImageArgs, attempt int, cause error) error {
			return s.RecordFailure(ctx, a.ImageID, uuid.Nil, attempt, cause)
		}})
	river.AddWorker(workers, &cloudWorker[SyncDitherArgs]{tracer: tracer, log: log,
		do: func(ctx context.Context, a SyncDitherArgs) error { return s.SyncDither(ctx, a.ImageID, a.DitherID) },
		failed: func(ctx context.Context, a SyncDitherArgs, attempt int, cause error) error {
			return s.RecordFailure(ctx, a.ImageID, a.DitherID, attempt, cause)
		}})
	river.AddWorker(workers, &cloudWorker[DestroyImageArgs]{tracer: tracer, log: log,
		do: func(ctx context.Context, a DestroyImageArgs) error { return s.DestroyImage(ctx, a.ImageID) }})
}
