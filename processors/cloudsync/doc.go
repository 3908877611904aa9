// Package cloudsync copies originals and dither results to Cloudinary and
// removes them when an image is deleted. It is what the job workers call:
// every Syncer method is idempotent and safe to retry, and its errors are
// classified by Retryable so a runner knows whether to try again later
// (NextRetry, MaxAttempts) or give up.
//
// Assets have deterministic public ids (ImagePublicID, DitherPublicID) and
// are uploaded with overwrite on, so a retried upload replaces the asset
// instead of adding a second one. The outcome is recorded as ImageSynced or
// DitherSynced through the command service, with event ids derived from the
// copy, so a retried record writes nothing. A sync that fails for good (a
// permanent error, or a transient one on the runner's last attempt) is
// recorded by RecordFailure as ImageSyncFailed or DitherSyncFailed, with a
// reason from FailureReason.
package cloudsync
