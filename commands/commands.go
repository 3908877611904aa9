// Package commands runs the image commands: it loads an image's stream,
// lets package images decide, and appends the decision with optimistic
// concurrency, retrying when another writer got there first. An upload's
// bytes are stored in the same transaction as its ImageUploaded event.
//
// Commands never dither, call Cloudinary or publish: processors react to
// the events that commands append.
package commands

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"time"

	"github.com/google/uuid"
	"golang.org/x/sync/semaphore"

	"github.com/imageservice/imageservice/auth"
	"github.com/imageservice/imageservice/blobstore"
	"github.com/imageservice/imageservice/eventstore"
	"github.com/imageservice/imageservice/images"
)

// Backend is the storage commands run against: an event log whose appends
// can share a transaction with blob writes.
type Backend interface {
	// ReadStream reads a stream, as eventstore.Store does.
	ReadStream(ctx context.Context, stream string, after int64, limit int) ([]eventstore.Event, error)
	// Append appends to a stream, as eventstore.Store does.
	Append(ctx context.Context, stream string, expected eventstore.ExpectedVersion, events ...eventstore.NewEvent) (eventstore.AppendResult, error)
	// InTx runs fn in one transaction, committed when fn returns nil.
	InTx(ctx context.Context, fn func(tx Tx) error) error
}

// Tx is a write transaction of a Backend.
type Tx interface {
	// PutBlob stores bytes under their sha256, as blobstore.Store.Put does.
	PutBlob(ctx context.Context, contentType string, data []byte) (blobstore.Blob, error)
	// Append appends to a stream within the transaction.
	Append(ctx context.Context, stream string, expected eventstore.ExpectedVersion, events ...eventstore.NewEvent) (eventstore.AppendResult, error)
}

// Options configure a Service. Zero fields take the defaults.
type Options struct {
	// MaxBytes caps an upload's size (default 25 MiB).
	MaxBytes int64
	// MaxPixels caps an upload's width times height (default 50 MP).
	MaxPixels int64
	// AutoDither requests, with every upload that asks for none, one
	// dither with the default options, as the old service did.
	AutoDither bool
	// Now is the clock (default time.Now).
	Now func() time.Time
	// NoNotifications refuses requests for notifications: the backend has
	// no processor that sends them (the embedded default).
	NoNotifications bool
	// DecodeBudget bounds the pixels of the uploads being decoded at once
	// (default 2 x MaxPixels): decoding takes 4 to 8 bytes a pixel, and a
	// small file can hold a large image, so further uploads wait their turn.
	// An upload that turning upright by its EXIF orientation copies (a
	// quarter turn or a transposition, or any turn of a JPEG or lossy
	// WebP) counts twice its pixels, as it holds two pixel buffers at its
	// peak (imagefile.PeakPixels); one larger than the budget takes all of it.
	DecodeBudget int64
}

// CodeNotificationsUnavailable refuses a notification this service cannot send.
const CodeNotificationsUnavailable = "NOTIFICATIONS_UNAVAILABLE"

// checkNotify refuses a request for notifications when none can be sent.
func (s *Service) checkNotify(n images.Notify) error {
	if s.opts.NoNotifications && !n.IsZero() {
		return &images.Error{Field: "notify", Code: CodeNotificationsUnavailable,
			Message: "this service cannot send notifications (they need the PostgreSQL set-up)"}
	}
	return nil
}

// Defaults of Options.
const (
	DefaultMaxBytes  = 25 << 20
	DefaultMaxPixels = 50_000_000
)

// Service runs commands. It is safe for concurrent use.
type Service struct {
	backend Backend
	opts    Options
	// decoding holds the pixels of the uploads being decoded.
	decoding *semaphore.Weighted
}

// New returns a Service on the backend.
func New(b Backend, opts Options) *Service {
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = DefaultMaxBytes
	}
	if opts.MaxPixels <= 0 {
		opts.MaxPixels = DefaultMaxPixels
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.DecodeBudget <= 0 {
		opts.DecodeBudget = 2 * opts.MaxPixels
	}
	return &Service{backend: b, opts: opts, decoding: semaphore.NewWeighted(opts.DecodeBudget)}
}

// Result is an image's state after a command, with where its events went.
type Result struct {
	Image images.Image
	// Position is the position of the last event appended, or of the
	// image's last event when the command wrote nothing.
	Position eventstore.Position
	// Replayed is true when the command repeated an earlier one (the same
	// idempotency key) and nothing was written.
	Replayed bool
}

// UploadInput is an upload.
type UploadInput struct {
	// Body is the file; it is read up to the size cap.
	Body io.Reader
	// Filename is the client's name for the file, kept as a cleaned label.
	Filename string
	// Dither, when set, chooses the first dither's options; when nil and
	// the service's AutoDither is on, the defaults are used.
	Dither *images.DitherInput
	// NoDither turns the automatic first dither off for this upload.
	NoDither bool
	// Notify asks for notifications of the first dither's outcome.
	Notify images.Notify
	// IdempotencyKey, when set, makes a repeated upload with the same key
	// (by the same actor) return the first upload's image and write nothing.
	IdempotencyKey string
	// Metadata is recorded with the events (actor, correlation id, ...).
	Metadata eventstore.Metadata
}

// maxAttempts bounds the optimistic-concurrency retries of one command.
const maxAttempts = 16

// retryWait waits before a command decides again after losing the race
// for its image's next version: a random time up to 1 ms, doubled for
// every race lost, at most 128 ms, so that the writers of one busy image
// spread out instead of colliding again.
func retryWait(ctx context.Context, attempt int) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(rand.N(time.Millisecond << min(attempt, 7))):
		return nil
	}
}

// Load returns an image's current state, replayed from its stream.
func (s *Service) Load(ctx context.Context, id uuid.UUID) (images.Image, error) {
	img, _, err := s.load(ctx, id, 0)
	return img, err
}

// LoadAt returns an image as it was right after the given stream version.
func (s *Service) LoadAt(ctx context.Context, id uuid.UUID, version int64) (images.Image, error) {
	if version < 1 {
		return images.Image{}, &images.Error{Field: "version", Code: images.CodeInvalidInput, Message: "version must be 1 or more"}
	}
	img, _, err := s.load(ctx, id, version)
	if err == nil && img.Version < version {
		return images.Image{}, &images.Error{Field: "version", Code: images.CodeNotFound,
			Message: fmt.Sprintf("image %s has no version %d (it is at version %d)", id, version, img.Version)}
	}
	return img, err
}

// History returns up to limit events of an image's stream after a version.
func (s *Service) History(ctx context.Context, id uuid.UUID, after int64, limit int) ([]eventstore.Event, error) {
	events, err := s.backend.ReadStream(ctx, images.StreamID(id), after, limit)
	if err != nil {
		return nil, fmt.Errorf("history of image %s: %w", id, err)
	}
	return events, nil
}

// ErrNewerEvents is returned (wrapped, with images.ErrUnknownEventType or
// images.ErrUnknownSchemaVersion) for an image whose stream, up to the
// version asked for, holds an event this build cannot read: a newer build
// wrote it, and the service is being upgraded. A command refuses, and
// appends nothing, rather than decide on a state without that event,
// which might break the domain's rules (the event might have deleted the
// image, or decided the dither); a replica of the newer build decides.
var ErrNewerEvents = errors.New("the image holds events of a newer version of the service, which is being upgraded; try again shortly")

// load replays an image's stream up to version (0: all of it), returning
// the state and the position of its last event. A stream with no events
// is images.ErrNotFound; an event this build cannot read is
// ErrNewerEvents, and any other event that does not decode an error too.
func (s *Service) load(ctx context.Context, id uuid.UUID, version int64) (images.Image, eventstore.Position, error) {
	stream := images.StreamID(id)
	var state images.Image
	var pos eventstore.Position
	for {
		batch, err := s.backend.ReadStream(ctx, stream, state.Version, 1000)
		if err != nil {
			return images.Image{}, pos, fmt.Errorf("load image %s: %w", id, err)
		}
		for _, e := range batch {
			if version > 0 && e.StreamVersion > version {
				return state, pos, nil
			}
			rec, err := Decode(e)
			if errors.Is(err, images.ErrUnreadable) {
				return images.Image{}, pos, fmt.Errorf("load image %s: %w: %w", id, ErrNewerEvents, err)
			}
			if err != nil {
				return images.Image{}, pos, fmt.Errorf("load image %s: %w", id, err)
			}
			state = images.Evolve(state, rec.Event, rec.Meta)
			pos = e.Position
		}
		if len(batch) < 1000 {
			break
		}
	}
	if !state.Exists() {
		return images.Image{}, pos, &images.Error{Field: "id", Code: images.CodeNotFound, Message: fmt.Sprintf("image %s not found", id)}
	}
	return state, pos, nil
}

// Decode turns a recorded event into the domain's event and metadata.
func Decode(e eventstore.Event) (images.Recorded, error) {
	ev, err := images.Unmarshal(e.Type, e.SchemaVersion, e.Data)
	if err != nil {
		return images.Recorded{}, fmt.Errorf("event %s (%s v%d): %w", e.ID, e.Type, e.SchemaVersion, err)
	}
	return images.Recorded{Event: ev, Meta: images.EventMeta{
		EventID: e.ID, StreamVersion: e.StreamVersion, RecordedAt: e.RecordedAt,
	}}, nil
}

// encode turns domain events into events to append, with ids from id.
func encode(evs []images.Event, meta eventstore.Metadata, id func(i int, e images.Event) uuid.UUID) ([]eventstore.NewEvent, error) {
	out := make([]eventstore.NewEvent, len(evs))
	for i, e := range evs {
		typ, version, data, err := images.Marshal(e)
		if err != nil {
			return nil, fmt.Errorf("encode %T: %w", e, err)
		}
		out[i] = eventstore.NewEvent{ID: id(i, e), Type: typ, SchemaVersion: version, Data: data, Metadata: meta}
	}
	return out, nil
}

// newIDs gives each event a fresh time-ordered id.
func newIDs(int, images.Event) uuid.UUID { return eventstore.NewEventID() }

// apply folds appended events into a state, as reading them back would.
func apply(state images.Image, evs []images.Event, res eventstore.AppendResult, now time.Time) images.Image {
	for i, e := range evs {
		state = images.Evolve(state, e, images.EventMeta{StreamVersion: res.StreamVersion - int64(len(evs)-1-i), RecordedAt: now})
	}
	return state
}

// decide runs one command on an image: load, decide, append at the loaded
// version, and start over when another writer appended in between.
func (s *Service) decide(ctx context.Context, id uuid.UUID, meta eventstore.Metadata,
	ids func(int, images.Event) uuid.UUID,
	decide func(images.Image) ([]images.Event, error)) (Result, error) {
	for attempt := 1; ; attempt++ {
		state, pos, err := s.load(ctx, id, 0)
		if err != nil {
			return Result{}, err
		}
		if !auth.FromContext(ctx).Owns(state.Owner) {
			// Others' images are answered as not found, never as forbidden.
			return Result{}, &images.Error{Field: "id", Code: images.CodeNotFound, Message: fmt.Sprintf("image %s not found", id)}
		}
		evs, err := decide(state)
		if err != nil || len(evs) == 0 {
			return Result{Image: state, Position: pos, Replayed: err == nil}, err
		}
		events, err := encode(evs, meta, ids)
		if err != nil {
			return Result{}, err
		}
		res, err := s.backend.Append(ctx, images.StreamID(id), eventstore.Exact(state.Version), events...)
		if errors.Is(err, eventstore.ErrWrongVersion) && attempt < maxAttempts {
			if err := retryWait(ctx, attempt); err != nil {
				return Result{}, err
			}
			continue
		}
		if err != nil {
			return Result{}, fmt.Errorf("image %s: %w", id, err)
		}
		return Result{Image: apply(state, evs, res, s.opts.Now()), Position: res.Positions[len(res.Positions)-1]}, nil
	}
}
