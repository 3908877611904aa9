package commands

import (
	"context"

	"github.com/google/uuid"

	"github.com/imageservice/imageservice/eventstore"
	"github.com/imageservice/imageservice/images"
)

// MarkSynced records the cloud copy of an image's original (ImageSynced).
// Recording the copy the image already has writes nothing. The event's id
// is derived from the image id and the copy, so a retried append of the
// same copy is recognised by the store.
func (s *Service) MarkSynced(ctx context.Context, imageID uuid.UUID, c images.ImageCloudCopy, meta eventstore.Metadata) (Result, error) {
	return s.decide(ctx, imageID, meta, syncedID(imageID, c.PublicID, c.SecureURL), func(img images.Image) ([]images.Event, error) {
		return images.MarkSynced(img, c)
	})
}

// MarkDitherSynced records the cloud copy of a completed dither's result
// (DitherSynced), with the same once-only rule and derived event id as
// MarkSynced.
func (s *Service) MarkDitherSynced(ctx context.Context, imageID uuid.UUID, c images.DitherCloudCopy, meta eventstore.Metadata) (Result, error) {
	return s.decide(ctx, imageID, meta, syncedID(c.DitherID, c.PublicID, c.SecureURL), func(img images.Image) ([]images.Event, error) {
		return images.MarkDitherSynced(img, c)
	})
}

// FailSync records that the cloud copy of an image's original
// (f.DitherID uuid.Nil) or of a completed dither's result could not be
// made (ImageSyncFailed or DitherSyncFailed). It records at most one
// failure, and none once the copy exists. The event's id is derived from
// the image or dither, so a retried append is recognised by the store.
func (s *Service) FailSync(ctx context.Context, imageID uuid.UUID, f images.SyncFailure, meta eventstore.Metadata) (Result, error) {
	subject := f.DitherID
	if subject == uuid.Nil {
		subject = imageID
	}
	return s.decide(ctx, imageID, meta, outcomeID(subject), func(img images.Image) ([]images.Event, error) {
		return images.FailSync(img, f)
	})
}

// syncedID derives a sync event's id from the synced image or dither and
// its cloud copy: the same copy gives the same id, a re-sync to a new copy
// (a new version in its URL) a new one.
func syncedID(subject uuid.UUID, publicID, secureURL string) func(int, images.Event) uuid.UUID {
	return func(_ int, e images.Event) uuid.UUID {
		return images.OutcomeEventID(subject, e.EventType()+"/"+publicID+"/"+secureURL)
	}
}
