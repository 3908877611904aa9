package images

import (
	"slices"
	"time"

	"github.com/google/uuid"
)

// Status is the lifecycle state of an image.
type Status string

// Image statuses.
const (
	StatusActive  Status = "ACTIVE"
	StatusDeleted Status = "DELETED"
)

// DitherStatus is the state of one dither.
type DitherStatus string

// Dither statuses. A dither leaves PENDING exactly once.
const (
	DitherStatusPending   DitherStatus = "PENDING"
	DitherStatusCompleted DitherStatus = "COMPLETED"
	DitherStatusFailed    DitherStatus = "FAILED"
)

// EventMeta is what the log knows about a recorded event that the event
// itself does not carry.
type EventMeta struct {
	// EventID is the event's id in the log (optional for Evolve).
	EventID uuid.UUID
	// StreamVersion is the event's position in its stream, from 1.
	StreamVersion int64
	// RecordedAt is when the log recorded the event.
	RecordedAt time.Time
}

// Recorded is an event with its log metadata, as read back from a stream.
type Recorded struct {
	Event Event
	Meta  EventMeta
}

// Image is the state of one image stream. The zero Image is "no such image".
type Image struct {
	ID          uuid.UUID
	Filename    string
	ContentType string
	ByteSize    int64
	Width       int
	Height      int
	SHA256      string
	Owner       string
	Status      Status
	// URL and PublicID are set once the original is synced to the cloud.
	URL      string
	PublicID string
	// SyncError is why the original's sync failed for good, until a sync
	// succeeds.
	SyncError string
	// Version is the stream version of the last event folded in.
	Version   int64
	CreatedAt time.Time
	UpdatedAt time.Time
	DeletedAt time.Time
	// Dithers are in request order.
	Dithers []Dither
}

// Dither is the state of one dither of an image.
type Dither struct {
	ID          uuid.UUID
	Options     DitherOptions
	Status      DitherStatus
	ResultKey   string
	ByteSize    int64
	Width       int
	Height      int
	Colours     int
	Error       string
	DurationMs  int64
	RequestedAt time.Time
	CompletedAt time.Time
	URL         string
	PublicID    string
	// SyncError is why the result's sync failed for good, until a sync
	// succeeds.
	SyncError string
	// Notify is where the outcome is to be sent; Notifications are the
	// recorded deliveries, at most one per channel, in recording order.
	Notify        Notify
	Notifications []Notification
}

// NotificationStatus is the state of one notification channel of a dither.
type NotificationStatus string

// Notification statuses.
const (
	NotifyPending NotificationStatus = "PENDING"
	NotifySent    NotificationStatus = "SENT"
	NotifyFailed  NotificationStatus = "FAILED"
)

// Notification is the recorded outcome of one notification channel.
type Notification struct {
	Channel string
	Status  NotificationStatus
	Target  string
	Attempt int
	// Error is why it failed.
	Error string
	// At is when it was sent or given up.
	At time.Time
}

// Notification returns the recorded notification of a channel.
func (d Dither) Notification(channel string) (Notification, bool) {
	i := slices.IndexFunc(d.Notifications, func(n Notification) bool { return n.Channel == channel })
	if i < 0 {
		return Notification{}, false
	}
	return d.Notifications[i], true
}

// Exists reports whether the image was ever uploaded (it may be deleted).
func (s Image) Exists() bool { return s.ID != uuid.Nil }

// Deleted reports whether the image is deleted.
func (s Image) Deleted() bool { return s.Status == StatusDeleted }

// Dither returns the dither with the given id.
func (s Image) Dither(id uuid.UUID) (Dither, bool) {
	if i := s.ditherIndex(id); i >= 0 {
		return s.Dithers[i], true
	}
	return Dither{}, false
}

func (s Image) ditherIndex(id uuid.UUID) int {
	return slices.IndexFunc(s.Dithers, func(d Dither) bool { return d.ID == id })
}

// Evolve folds one event into the state and returns the new state. It never
// modifies the state passed in (the dither slice is copied on change), so
// callers may keep older states. Events it does not know only advance the
// version.
func Evolve(s Image, e Event, meta EventMeta) Image {
	if meta.StreamVersion > 0 {
		s.Version = meta.StreamVersion
	} else {
		s.Version++
	}
	if !meta.RecordedAt.IsZero() {
		s.UpdatedAt = meta.RecordedAt
	}
	switch e := deref(e).(type) {
	case ImageUploaded:
		s = evolveUploaded(s, e, meta)
	case DitherRequested:
		s = evolveRequested(s, e, meta)
	case DitherCompleted:
		s = updateDither(s, e.DitherID, func(d *Dither) {
			d.Status, d.ResultKey, d.ByteSize = DitherStatusCompleted, e.ResultKey, e.ByteSize
			d.Width, d.Height, d.Colours, d.DurationMs = e.Width, e.Height, e.Colours, e.DurationMs
			d.CompletedAt = orTime(e.CompletedAt, meta.RecordedAt)
		})
	case DitherFailed:
		s = updateDither(s, e.DitherID, func(d *Dither) {
			d.Status, d.Error = DitherStatusFailed, e.Reason
			d.CompletedAt = orTime(e.CompletedAt, meta.RecordedAt)
		})
	case ImageSynced:
		s.URL, s.PublicID, s.SyncError = e.SecureURL, e.PublicID, ""
	case DitherSynced:
		s = updateDither(s, e.DitherID, func(d *Dither) { d.URL, d.PublicID, d.SyncError = e.SecureURL, e.PublicID, "" })
	case ImageSyncFailed:
		s.SyncError = e.Reason
	case DitherSyncFailed:
		s = updateDither(s, e.DitherID, func(d *Dither) { d.SyncError = e.Reason })
	case ImageDeleted:
		s.Status, s.DeletedAt = StatusDeleted, orTime(e.DeletedAt, meta.RecordedAt)
	case NotificationSent:
		s = addNotification(s, e.DitherID, Notification{Channel: e.Channel, Status: NotifySent,
			Target: e.Target, Attempt: e.Attempt, At: orTime(e.SentAt, meta.RecordedAt)})
	case NotificationFailed:
		s = addNotification(s, e.DitherID, Notification{Channel: e.Channel, Status: NotifyFailed,
			Target: e.Target, Attempt: e.Attempt, Error: e.Reason, At: orTime(e.FailedAt, meta.RecordedAt)})
	}
	return s
}

// Replay folds recorded events, in stream order, into a fresh state.
func Replay(events ...Recorded) Image {
	var s Image
	for _, r := range events {
		s = Evolve(s, r.Event, r.Meta)
	}
	return s
}

func evolveUploaded(s Image, e ImageUploaded, meta EventMeta) Image {
	s.ID, s.Filename, s.ContentType, s.ByteSize = e.ImageID, e.Filename, e.ContentType, e.ByteSize
	s.Width, s.Height, s.SHA256, s.Owner = e.Width, e.Height, e.SHA256, e.Owner
	s.Status = StatusActive
	s.CreatedAt = orTime(e.UploadedAt, meta.RecordedAt)
	return s
}

func evolveRequested(s Image, e DitherRequested, meta EventMeta) Image {
	if s.ditherIndex(e.DitherID) >= 0 {
		return s
	}
	d := Dither{ID: e.DitherID, Options: e.DitherOptions, Status: DitherStatusPending,
		RequestedAt: orTime(e.RequestedAt, meta.RecordedAt), Notify: e.Notify}
	if d.Options.ChannelLevels != nil {
		cl := *d.Options.ChannelLevels
		d.Options.ChannelLevels = &cl
	}
	s.Dithers = append(slices.Clip(s.Dithers), d)
	return s
}

// addNotification records a channel's outcome once; a repeat is ignored.
func addNotification(s Image, ditherID uuid.UUID, n Notification) Image {
	return updateDither(s, ditherID, func(d *Dither) {
		if _, ok := d.Notification(n.Channel); !ok {
			d.Notifications = append(slices.Clip(d.Notifications), n)
		}
	})
}

func updateDither(s Image, id uuid.UUID, f func(*Dither)) Image {
	i := s.ditherIndex(id)
	if i < 0 {
		return s
	}
	s.Dithers = slices.Clone(s.Dithers)
	f(&s.Dithers[i])
	return s
}

func orTime(t, fallback time.Time) time.Time {
	if t.IsZero() {
		return fallback
	}
	return t
}

// deref turns pointer events into values so that Evolve accepts both.
func deref(e Event) Event {
	switch p := e.(type) {
	case *ImageUploaded:
		return valueOf(p)
	case *DitherRequested:
		return valueOf(p)
	case *DitherCompleted:
		return valueOf(p)
	case *DitherFailed:
		return valueOf(p)
	case *ImageSynced:
		return valueOf(p)
	case *DitherSynced:
		return valueOf(p)
	case *ImageSyncFailed:
		return valueOf(p)
	case *DitherSyncFailed:
		return valueOf(p)
	case *ImageDeleted:
		return valueOf(p)
	case *NotificationSent:
		return valueOf(p)
	case *NotificationFailed:
		return valueOf(p)
	}
	return e
}

func valueOf[T Event](p *T) Event {
	if p == nil {
		return nil
	}
	return *p
}
