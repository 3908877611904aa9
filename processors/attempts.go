package processors

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
)

// Every job kind that records an outcome (dithers, notifications,
// Cloudinary syncs) ends in one: on its last attempt a failure is recorded
// as the job's outcome (DitherFailed, NotificationFailed, ImageSyncFailed,
// DitherSyncFailed) with time of its own (recordTimeout), and a last
// attempt that cannot record it is snoozed for lastAttemptSnooze, not
// discarded. A Cloudinary destroy, which has no outcome to record, is
// snoozed for destroyRetry on a last attempt that still fails. Both go
// through snoozeLastAttempt.

// snoozeLastAttempt returns the error of a job's attempt for River, except
// on the last attempt: River would discard the job, so that its work would
// never be done or its outcome recorded, and the attempt is snoozed
// instead, to run again after d, still as the last. An attempt cut short
// by the service stopping is returned as is: River hands the job back
// with its attempts intact.
func snoozeLastAttempt(ctx context.Context, log *slog.Logger, job *rivertype.JobRow, err error, d time.Duration) error {
	if err == nil || job.Attempt < job.MaxAttempts || errors.Is(ctx.Err(), context.Canceled) {
		return err
	}
	log.ErrorContext(ctx, "last attempt failed; trying again later, still as the last",
		"job", job.Kind, "id", job.ID, "in", d, "err", err)
	return river.JobSnooze(d)
}

// lastAttemptSnooze is how long a last attempt that could not record its
// outcome waits before trying again.
const lastAttemptSnooze = time.Minute

// destroyRetry is how long a Cloudinary destroy that is still failing
// after its last attempt waits before it tries again.
const destroyRetry = time.Hour

// recordTimeout bounds the recording of a failure on the last attempt,
// which must not share the deadline of the attempt that ran out of time.
const recordTimeout = 30 * time.Second
