package cloudsync

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"

	"github.com/imageservice/imageservice/blobstore"
	"github.com/imageservice/imageservice/commands"
	"github.com/imageservice/imageservice/eventstore"
	"github.com/imageservice/imageservice/images"
	"github.com/imageservice/imageservice/tracing"
)

// Folder is the Cloudinary folder of every asset of the service.
const Folder = "imageservice"

// ImagePublicID is the public id of an image's original:
// "imageservice/<image id>".
func ImagePublicID(imageID uuid.UUID) string { return Folder + "/" + imageID.String() }

// DitherPublicID is the public id of a dither's result:
// "imageservice/<image id>/<dither id>".
func DitherPublicID(imageID, ditherID uuid.UUID) string {
	return ImagePublicID(imageID) + "/" + ditherID.String()
}

// Images is what a Syncer needs of the command service (*commands.Service).
type Images interface {
	Load(ctx context.Context, id uuid.UUID) (images.Image, error)
	MarkSynced(ctx context.Context, imageID uuid.UUID, c images.ImageCloudCopy, meta eventstore.Metadata) (commands.Result, error)
	MarkDitherSynced(ctx context.Context, imageID uuid.UUID, c images.DitherCloudCopy, meta eventstore.Metadata) (commands.Result, error)
	FailSync(ctx context.Context, imageID uuid.UUID, f images.SyncFailure, meta eventstore.Metadata) (commands.Result, error)
}

// Blobs opens stored originals and results (a blobstore.Store).
type Blobs interface {
	Open(ctx context.Context, key string) (blobstore.Reader, blobstore.Blob, error)
}

var _ Images = (*commands.Service)(nil)

// Options configure a Syncer.
type Options struct {
	// Logger logs outcomes (default slog.Default()).
	Logger *slog.Logger
	// Actor is recorded in the metadata of the events (default "cloudsync").
	Actor string
	// MaxBytes caps a blob read for upload (default blobstore.DefaultMaxSize).
	MaxBytes int64
}

// Syncer keeps Cloudinary copies of originals and dither results. Each of
// its methods is idempotent and safe to retry; classify its errors with
// Retryable. It is safe for concurrent use.
type Syncer struct {
	cloud  *Client
	images Images
	blobs  Blobs
	opts   Options
}

// NewSyncer returns a Syncer uploading with cloud, loading and recording
// through imgs, and reading bytes from blobs.
func NewSyncer(cloud *Client, imgs Images, blobs Blobs, opts Options) *Syncer {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Actor == "" {
		opts.Actor = "cloudsync"
	}
	return &Syncer{cloud: cloud, images: imgs, blobs: blobs, opts: opts}
}

// SyncImage uploads an image's original as ImagePublicID and records
// ImageSynced. An image already synced is done; so is a deleted one (after
// destroying any copy a concurrent sync may have left behind).
func (s *Syncer) SyncImage(ctx context.Context, imageID uuid.UUID) error {
	log := s.opts.Logger.With("image_id", imageID)
	img, err := s.images.Load(ctx, imageID)
	if err != nil {
		return s.fail(log, fmt.Errorf("sync image %s: %w", imageID, err))
	}
	publicID := ImagePublicID(imageID)
	switch {
	case img.Deleted():
		return s.fail(log, s.cleanup(ctx, log, publicID))
	case img.URL != "":
		log.Debug("cloudsync: image already synced", "url", img.URL)
		return nil
	}
	asset, err := s.upload(ctx, publicID, img.SHA256)
	if err != nil {
		return s.fail(log, fmt.Errorf("sync image %s: %w", imageID, err))
	}
	_, err = s.images.MarkSynced(ctx, imageID, images.ImageCloudCopy{SecureURL: asset.SecureURL, PublicID: asset.PublicID}, s.meta(ctx))
	if err != nil {
		return s.fail(log, s.recordFailed(ctx, log, asset.PublicID, fmt.Errorf("record sync of image %s: %w", imageID, err)))
	}
	log.Info("cloudsync: image synced", "public_id", asset.PublicID, "url", asset.SecureURL)
	return nil
}

// SyncDither uploads a completed dither's result as DitherPublicID and
// records DitherSynced. A dither already synced or FAILED is done, as is
// any dither of a deleted image; a PENDING dither is a permanent error
// (the job is enqueued on DitherCompleted).
func (s *Syncer) SyncDither(ctx context.Context, imageID, ditherID uuid.UUID) error {
	log := s.opts.Logger.With("image_id", imageID, "dither_id", ditherID)
	img, err := s.images.Load(ctx, imageID)
	if err != nil {
		return s.fail(log, fmt.Errorf("sync dither %s: %w", ditherID, err))
	}
	publicID := DitherPublicID(imageID, ditherID)
	if img.Deleted() {
		return s.fail(log, s.cleanup(ctx, log, publicID))
	}
	d, err := syncableDither(img, ditherID)
	if err != nil || d.URL != "" || d.Status == images.DitherStatusFailed {
		return s.fail(log, err)
	}
	asset, err := s.upload(ctx, publicID, d.ResultKey)
	if err != nil {
		return s.fail(log, fmt.Errorf("sync dither %s: %w", ditherID, err))
	}
	cp := images.DitherCloudCopy{DitherID: ditherID, SecureURL: asset.SecureURL, PublicID: asset.PublicID}
	if _, err := s.images.MarkDitherSynced(ctx, imageID, cp, s.meta(ctx)); err != nil {
		return s.fail(log, s.recordFailed(ctx, log, asset.PublicID, fmt.Errorf("record sync of dither %s: %w", ditherID, err)))
	}
	log.Info("cloudsync: dither synced", "public_id", asset.PublicID, "url", asset.SecureURL)
	return nil
}

// RecordFailure records that the sync of an image's original (ditherID
// uuid.Nil) or of a dither's result failed for good at the given attempt,
// because of cause: ImageSyncFailed or DitherSyncFailed, with
// FailureReason(cause, attempt) as the reason. A runner calls it for a
// permanent error, and for a transient one on its last attempt. When the
// domain refuses the record (the image was deleted meanwhile, the copy or
// a failure is recorded already) there is nothing to record: nil. Any
// other error means nothing was recorded and the call may be retried.
func (s *Syncer) RecordFailure(ctx context.Context, imageID, ditherID uuid.UUID, attempt int, cause error) error {
	log := s.opts.Logger.With("image_id", imageID)
	if ditherID != uuid.Nil {
		log = log.With("dither_id", ditherID)
	}
	f := images.SyncFailure{DitherID: ditherID, Reason: FailureReason(cause, attempt), Attempt: attempt, At: time.Now()}
	_, err := s.images.FailSync(ctx, imageID, f, s.meta(ctx))
	if err != nil && images.CodeOf(err) != "" {
		log.Info("cloudsync: sync failure not recorded", "reason", err)
		return nil
	}
	if err != nil {
		return fmt.Errorf("record sync failure of image %s: %w", imageID, err)
	}
	log.Error("cloudsync: sync failed for good", "attempt", attempt, "err", cause)
	return nil
}

// syncableDither finds a dither that has an outcome.
func syncableDither(img images.Image, ditherID uuid.UUID) (images.Dither, error) {
	d, ok := img.Dither(ditherID)
	switch {
	case !ok:
		return d, fmt.Errorf("sync dither %s: %w", ditherID, &images.Error{Field: "ditherId", Code: images.CodeNotFound,
			Message: fmt.Sprintf("dither %s not found", ditherID)})
	case d.Status == images.DitherStatusPending:
		return d, fmt.Errorf("sync dither %s: %w", ditherID, &images.Error{Field: "ditherId", Code: images.CodeDitherNotCompleted,
			Message: fmt.Sprintf("dither %s is PENDING, not COMPLETED", ditherID)})
	}
	return d, nil
}

// DestroyImage removes a deleted image's assets from Cloudinary: the
// original's and every dither's. Assets that are not there count as done.
// An image that is not deleted is refused (a permanent error).
func (s *Syncer) DestroyImage(ctx context.Context, imageID uuid.UUID) error {
	log := s.opts.Logger.With("image_id", imageID)
	img, err := s.images.Load(ctx, imageID)
	if err != nil {
		return s.fail(log, fmt.Errorf("destroy image %s: %w", imageID, err))
	}
	if !img.Deleted() {
		return s.fail(log, fmt.Errorf("destroy image %s: %w", imageID, &images.Error{Field: "id", Code: images.CodeInvalidInput,
			Message: fmt.Sprintf("image %s is not deleted", imageID)}))
	}
	ids := []string{ImagePublicID(imageID)}
	for _, d := range img.Dithers {
		ids = append(ids, DitherPublicID(imageID, d.ID))
	}
	for _, id := range ids {
		found, err := s.cloud.Destroy(ctx, id)
		if err != nil {
			return s.fail(log, fmt.Errorf("destroy image %s: %w", imageID, err))
		}
		log.Debug("cloudsync: asset destroyed", "public_id", id, "found", found)
	}
	log.Info("cloudsync: image assets destroyed", "assets", len(ids))
	return nil
}

// upload reads a blob and uploads it under publicID.
func (s *Syncer) upload(ctx context.Context, publicID, key string) (Asset, error) {
	r, _, err := s.blobs.Open(ctx, key)
	if err != nil {
		return Asset{}, fmt.Errorf("open blob %s: %w", key, err)
	}
	// Read it all first: the client streams from another goroutine that may
	// outlive the call when the server answers early.
	data, err := blobstore.ReadAll(r, s.opts.MaxBytes)
	_ = r.Close()
	if err != nil {
		return Asset{}, fmt.Errorf("read blob %s: %w", key, err)
	}
	return s.cloud.Upload(ctx, publicID, bytes.NewReader(data))
}

// recordFailed handles a failed record after an upload: when the image was
// deleted meanwhile, the fresh asset is destroyed and the sync is done.
func (s *Syncer) recordFailed(ctx context.Context, log *slog.Logger, publicID string, err error) error {
	if !errors.Is(err, images.ErrImageDeleted) {
		return err
	}
	return s.cleanup(ctx, log, publicID)
}

// cleanup destroys an asset of a deleted image that a sync racing the
// deletion may have uploaded after the deletion's own clean-up.
func (s *Syncer) cleanup(ctx context.Context, log *slog.Logger, publicID string) error {
	found, err := s.cloud.Destroy(ctx, publicID)
	if err != nil {
		return fmt.Errorf("clean up %s of a deleted image: %w", publicID, err)
	}
	log.Info("cloudsync: image is deleted, nothing to sync", "public_id", publicID, "stray_copy_destroyed", found)
	return nil
}

// fail logs an error with its classification and returns it.
func (s *Syncer) fail(log *slog.Logger, err error) error {
	if err == nil {
		return nil
	}
	if Retryable(err) {
		log.Warn("cloudsync: transient failure, retry later", "err", err)
	} else {
		log.Error("cloudsync: permanent failure, giving up", "err", err)
	}
	return err
}

// meta is the metadata of the events the syncer records, with the
// traceparent of the span in ctx (the job's).
func (s *Syncer) meta(ctx context.Context) eventstore.Metadata {
	return eventstore.Metadata{Actor: s.opts.Actor, TraceParent: tracing.TraceParent(ctx)}
}
