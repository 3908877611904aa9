package processors

import (
	"context"
	"time"

	"github.com/google/uuid"
	"github.com/riverqueue/river"
	"go.opentelemetry.io/otel/trace"

	"github.com/imageservice/imageservice/processors/cloudsync"
	"github.com/imageservice/imageservice/tracing"
)

// Cloudinary jobs: uploads of originals and results, and the clean-up of
// a deleted image's assets. Each is unique per subject, retried with
// cloudsync's back-off for more than an hour on rate limits and outages,
// and given up (cancelled) on a permanent error.

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
	do     func(ctx context.Context, args T) error
	tracer trace.Tracer
}

// Work implements river.Worker: permanent errors cancel the job. The
// attempt has a span, a child of the trace of the event that asked for
// the job, which the sync's event records as its trace parent.
func (w *cloudWorker[T]) Work(ctx context.Context, job *river.Job[T]) (err error) {
	ctx, span := startJob(ctx, w.tracer, job.JobRow)
	defer func() { tracing.End(span, err) }()
	err = w.do(ctx, job.Args)
	if err != nil && !cloudsync.Retryable(err) {
		return river.JobCancel(err)
	}
	return err
}

// NextRetry implements river.Worker with cloudsync's back-off.
func (w *cloudWorker[T]) NextRetry(job *river.Job[T]) time.Time {
	return time.Now().Add(cloudsync.NextRetry(job.Attempt))
}

// addCloudWorkers registers the Cloudinary workers of a syncer.
func addCloudWorkers(workers *river.Workers, s *cloudsync.Syncer, tracer trace.Tracer) {
	river.AddWorker(workers, &cloudWorker[SyncImageArgs]{tracer: tracer, do: func(ctx context.Context, a SyncImageArgs) error {
		return s.SyncImage(ctx, a.ImageID)
	}})
	river.AddWorker(workers, &cloudWorker[SyncDitherArgs]{tracer: tracer, do: func(ctx context.Context, a SyncDitherArgs) error {
		return s.SyncDither(ctx, a.ImageID, a.DitherID)
	}})
	river.AddWorker(workers, &cloudWorker[DestroyImageArgs]{tracer: tracer, do: func(ctx context.Context, a DestroyImageArgs) error {
		return s.DestroyImage(ctx, a.ImageID)
	}})
}
