package commands

import (
	"context"

	"github.com/google/uuid"

	"github.com/imageservice/imageservice/eventstore"
	"github.com/imageservice/imageservice/images"
)

// RecordNotification records a notification's outcome (NotificationSent,
// or NotificationFailed when the outcome has a reason). A channel's
// outcome is recorded once: a repeat writes nothing. The event's id is
// derived from the dither and channel, so a retried append is recognised
// by the store.
func (s *Service) RecordNotification(ctx context.Context, imageID uuid.UUID, n images.NotificationOutcome, meta eventstore.Metadata) (Result, error) {
	return s.decide(ctx, imageID, meta, notifyID(n.DitherID, n.Channel), func(img images.Image) ([]images.Event, error) {
		return images.RecordNotification(img, n)
	})
}

// notifyID derives a notification outcome's event id from the dither and
// channel: Sent and Failed share it, so at most one of them is stored.
func notifyID(ditherID uuid.UUID, channel string) func(int, images.Event) uuid.UUID {
	return func(int, images.Event) uuid.UUID { return images.OutcomeEventID(ditherID, "notify/"+channel) }
}
