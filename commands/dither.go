package commands

import (
	"context"

	"github.com/google/uuid"

	"github.com/imageservice/imageservice/eventstore"
	"github.com/imageservice/imageservice/images"
)

// DitherInput is a request for another dither of an image.
type DitherInput struct {
	ImageID uuid.UUID
	Options images.DitherInput
	// Notify asks for notifications of the dither's outcome.
	Notify images.Notify
	// IdempotencyKey, when set, makes a repeated request return the first
	// request's dither and write nothing.
	IdempotencyKey string
	Metadata       eventstore.Metadata
}

// RequestDither appends DitherRequested to an image, refused for a deleted
// image or invalid options. It returns the image and the new dither's id.
func (s *Service) RequestDither(ctx context.Context, in DitherInput) (Result, uuid.UUID, error) {
	if err := images.CheckIdempotencyKey(in.IdempotencyKey); err != nil {
		return Result{}, uuid.Nil, err
	}
	ditherID := eventstore.NewEventID()
	if in.IdempotencyKey != "" {
		ditherID = uuid.NewSHA1(in.ImageID, []byte(in.Metadata.Actor+"\x00"+in.IdempotencyKey))
	}
	if err := s.checkNotify(in.Notify); err != nil {
		return Result{}, uuid.Nil, err
	}
	res, err := s.decide(ctx, in.ImageID, in.Metadata, newIDs, func(img images.Image) ([]images.Event, error) {
		return images.RequestDither(img, images.DitherRequest{DitherID: ditherID, Options: in.Options, Notify: in.Notify, Now: s.opts.Now()})
	})
	// The request names the image imageId (decide refuses others' images
	// as "id"), and the dither's id comes from the idempotency key.
	err = images.WithField(err, "id", "imageId")
	if in.IdempotencyKey != "" {
		err = images.WithField(err, "ditherId", "idempotencyKey")
	}
	return res, ditherID, err
}

// Delete appends ImageDeleted; deleting a deleted image is not found.
func (s *Service) Delete(ctx context.Context, id uuid.UUID, meta eventstore.Metadata) (Result, error) {
	return s.decide(ctx, id, meta, newIDs, func(img images.Image) ([]images.Event, error) {
		return images.Delete(img, images.DeleteImage{Now: s.opts.Now()})
	})
}

// CompleteDither records a dither's result. The event's id is derived from
// the dither id, so a retried completion writes nothing.
func (s *Service) CompleteDither(ctx context.Context, imageID uuid.UUID, r images.DitherResult, meta eventstore.Metadata) (Result, error) {
	return s.decide(ctx, imageID, meta, outcomeID(r.DitherID), func(img images.Image) ([]images.Event, error) {
		return images.CompleteDither(img, r)
	})
}

// FailDither records that a dither failed for good, with a reason a user
// can read. Like CompleteDither it records at most one outcome.
func (s *Service) FailDither(ctx context.Context, imageID uuid.UUID, f images.DitherFailure, meta eventstore.Metadata) (Result, error) {
	return s.decide(ctx, imageID, meta, outcomeID(f.DitherID), func(img images.Image) ([]images.Event, error) {
		return images.FailDither(img, f)
	})
}

// outcomeID derives a dither outcome's event id from the dither id.
func outcomeID(ditherID uuid.UUID) func(int, images.Event) uuid.UUID {
	return func(_ int, e images.Event) uuid.UUID { return images.OutcomeEventID(ditherID, e.EventType()) }
}
