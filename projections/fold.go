package projections

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strings"

	"github.com/google/uuid"

	"github.com/imageservice/imageservice/eventstore"
	"github.com/imageservice/imageservice/images"
)

// StateStore is what ApplyBatch needs of a backend, within the
// transaction that applies a batch: the stored images.Image states of
// images, and a place to write an image's new state and rows.
type StateStore interface {
	// LoadStates returns the stored states of the images with the given
	// ids, in one query; images the model does not hold are absent.
	LoadStates(ctx context.Context, ids []uuid.UUID) (map[uuid.UUID]images.Image, error)
	// WriteImage stores an image's new state s and its rows: the image's
	// row and the rows of the dithers in ChangedDithers(old, s).
	WriteImage(ctx context.Context, old, s images.Image) error
}

// ApplyBatch folds a batch of events into the read model that st holds:
// it groups the events of image streams by stream (GroupByImage), loads
// the states of those images, folds each stream's events in (Fold) and
// writes every image back. Images whose stream has no ImageUploaded are
// logged and left out. It returns the number of images written. An event
// of a type or schema version this build cannot read fails the batch with
// images.ErrUnreadable (see Fold), so that the caller's transaction, and its
// checkpoint, goes no further.
func ApplyBatch(ctx context.Context, log *slog.Logger, st StateStore, events []eventstore.Event) (int, error) {
	groups := GroupByImage(log, events)
	if len(groups) == 0 {
		return 0, nil
	}
	ids := make([]uuid.UUID, len(groups))
	for i, g := range groups {
		ids[i] = g.ID
	}
	states, err := st.LoadStates(ctx, ids)
	if err != nil {
		return 0, fmt.Errorf("load %d image states: %w", len(ids), err)
	}
	written := 0
	for _, g := range groups {
		old := states[g.ID]
		s, err := Fold(log, old, g.Events)
		if err != nil {
			return written, err
		}
		if !s.Exists() {
			log.Warn("projections: events of an image stream without ImageUploaded; skipped",
				"stream", images.StreamID(g.ID), "events", len(g.Events))
			continue
		}
		if err := st.WriteImage(ctx, old, s); err != nil {
			return written, fmt.Errorf("write image %s: %w", s.ID, err)
		}
		written++
	}
	return written, nil
}

// StreamEvents are the events of one image stream within a batch.
type StreamEvents struct {
	// ID is the image's id.
	ID uuid.UUID
	// Events are the stream's events in log order.
	Events []eventstore.Event
}

// GroupByImage keeps the events of image streams, grouped by stream in
// order of first appearance. Events of other streams are ignored; events
// of a stream named like an image stream without a valid id are logged
// (SkipEvent) and left out.
func GroupByImage(log *slog.Logger, events []eventstore.Event) []StreamEvents {
	var groups []StreamEvents
	index := make(map[uuid.UUID]int)
	for _, e := range events {
		if !strings.HasPrefix(e.StreamID, images.StreamPrefix) {
			continue
		}
		id, err := images.ParseStreamID(e.StreamID)
		if err != nil {
			SkipEvent(log, e, err)
			continue
		}
		i, ok := index[id]
		if !ok {
			i = len(groups)
			index[id] = i
			groups = append(groups, StreamEvents{ID: id})
		}
		groups[i].Events = append(groups[i].Events, e)
	}
	return groups
}

// Fold applies a stream's events to its state with images.Evolve. Events
// at or below the state's version are already in it and are left out, so
// a batch applied twice changes nothing. Events that cannot be decoded
// are logged (SkipEvent) and left out, except events of a type or schema
// version this build does not know: Fold stops at the first of those with
// images.ErrUnreadable. A read model that skipped them would lack what they
// say for good, since its checkpoint moves past them (in a rolling deploy
// the newer replicas would never see them either); stopping leaves the
// model behind but right, until a build that reads them takes over (the
// runner hands the partition back after a failed batch).
func Fold(log *slog.Logger, s images.Image, events []eventstore.Event) (images.Image, error) {
	for _, e := range events {
		if e.StreamVersion <= s.Version {
			continue
		}
		ev, err := images.Unmarshal(e.Type, e.SchemaVersion, e.Data)
		if errors.Is(err, images.ErrUnreadable) {
			return s, fmt.Errorf("%s: %w", e.Describe(), err)
		}
		if err != nil {
			SkipEvent(log, e, err)
			continue
		}
		s = images.Evolve(s, ev, images.EventMeta{EventID: e.ID, StreamVersion: e.StreamVersion, RecordedAt: e.RecordedAt})
	}
	return s, nil
}

// SkipEvent logs, as an error, an event that a projection leaves out
// because it cannot decode it.
func SkipEvent(log *slog.Logger, e eventstore.Event, err error) {
	log.Error("projections: malformed event skipped", "stream", e.StreamID, "version", e.StreamVersion, "type", e.Type,
		"schema_version", e.SchemaVersion, "event_id", e.ID, "position", e.Position.String(), "err", err)
}

// ChangedDithers returns the read models of the dithers of s that differ
// from those of old (new ones included), the rows an update must write.
func ChangedDithers(old, s images.Image) []Dither {
	var out []Dither
	for i, d := range s.Dithers {
		if i < len(old.Dithers) && sameDitherRow(old.Dithers[i], d) {
			continue
		}
		out = append(out, DitherFromState(s.ID, i+1, d))
	}
	return out
}

// sameDitherRow reports whether two dither states have the same read-model
// row; notifications are not part of it.
func sameDitherRow(a, b images.Dither) bool {
	a.Notifications, b.Notifications = nil, nil
	return reflect.DeepEqual(a, b)
}
