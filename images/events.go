package images

import (
	"time"

	"github.com/google/uuid"
)

// Event is a domain event of an image stream.
type Event interface {
	// EventType is the stored type name, e.g. "ImageUploaded".
	EventType() string
	// SchemaVersion is the version of the JSON written for this type.
	SchemaVersion() int
}

// Event type names as stored in the log.
const (
	TypeImageUploaded   = "ImageUploaded"
	TypeDitherRequested = "DitherRequested"
	TypeDitherCompleted = "DitherCompleted"
	TypeDitherFailed    = "DitherFailed"
	TypeImageSynced     = "ImageSynced"
	TypeDitherSynced    = "DitherSynced"
	TypeImageDeleted    = "ImageDeleted"
	// TypeImageSyncFailed and TypeDitherSyncFailed record that the cloud
	// copy of the original or of a dither's result could not be made.
	TypeImageSyncFailed  = "ImageSyncFailed"
	TypeDitherSyncFailed = "DitherSyncFailed"
	// TypeNotificationSent and TypeNotificationFailed record the outcome
	// of a notification about a dither's outcome.
	TypeNotificationSent   = "NotificationSent"
	TypeNotificationFailed = "NotificationFailed"
)

// Current schema versions, one per event type. Bump one when the JSON of the
// type changes incompatibly and register an upcaster from the old version.
const (
	ImageUploadedVersion   = 1
	DitherRequestedVersion = 2
	DitherCompletedVersion = 1
	DitherFailedVersion    = 1
	ImageSyncedVersion     = 1
	DitherSyncedVersion    = 1
	ImageDeletedVersion    = 1
	// NotificationSentVersion and NotificationFailedVersion are the first
	// versions of the notification events.
	NotificationSentVersion   = 1
	NotificationFailedVersion = 1
	// ImageSyncFailedVersion and DitherSyncFailedVersion are the first
	// versions of the sync failure events.
	ImageSyncFailedVersion  = 1
	DitherSyncFailedVersion = 1
)

// ChannelLevels are per-channel quantisation levels (each 2..256).
type ChannelLevels struct {
	R int `json:"r"`
	G int `json:"g"`
	B int `json:"b"`
}

// DitherOptions are the resolved options of a dither as recorded in
// DitherRequested: every field has a concrete value.
type DitherOptions struct {
	// Levels per channel (2 = black/white per channel); the old "channels".
	Levels int `json:"levels"`
	// ChannelLevels overrides Levels per channel when set.
	ChannelLevels *ChannelLevels `json:"channel_levels,omitempty"`
	// Algorithm is a kebab-case name such as "floyd-steinberg".
	Algorithm string `json:"algorithm"`
	// Serpentine scans alternate rows right to left.
	Serpentine bool `json:"serpentine"`
	// Strength scales the diffused error, 0..1.
	Strength float64 `json:"strength"`
	// ColorSpace is ColorSpaceLinear or ColorSpaceSRGB.
	ColorSpace string `json:"color_space"`
	// Grayscale converts to gray before dithering.
	Grayscale bool `json:"grayscale"`
	// Palette names a fixed palette; empty means evenly spaced levels.
	Palette string `json:"palette,omitempty"`
}

// ImageUploaded records a new image. It starts the stream.
type ImageUploaded struct {
	ImageID     uuid.UUID `json:"image_id"`
	Filename    string    `json:"filename"`
	ContentType string    `json:"content_type"`
	ByteSize    int64     `json:"byte_size"`
	Width       int       `json:"width"`
	Height      int       `json:"height"`
	SHA256      string    `json:"sha256"`
	Owner       string    `json:"owner,omitempty"`
	UploadedAt  time.Time `json:"uploaded_at"`
}

// DitherRequested records a request to dither the image with some options.
// Notify was added to version 2 as an optional field: events written before
// it have none and read as "no notification", so no version bump was needed.
type DitherRequested struct {
	DitherID uuid.UUID `json:"dither_id"`
	DitherOptions
	RequestedAt time.Time `json:"requested_at"`
	// Notify is who to tell when the dither completes or fails.
	Notify Notify `json:"notify,omitzero"`
}

// Notification channels.
const (
	ChannelEmail   = "email"
	ChannelWebhook = "webhook"
)

// Notify is where a dither's outcome is to be sent; empty fields are off.
type Notify struct {
	// Email is a bare address (no display name).
	Email string `json:"email,omitempty"`
	// WebhookURL is an absolute http(s) URL that gets a signed POST.
	WebhookURL string `json:"webhook_url,omitempty"`
}

// NotificationSent records that a notification of a dither's outcome was
// delivered on a channel. There is at most one Sent or Failed per dither
// and channel.
type NotificationSent struct {
	DitherID uuid.UUID `json:"dither_id"`
	// Channel is ChannelEmail or ChannelWebhook.
	Channel string `json:"channel"`
	// Target is the redacted address or the webhook's host.
	Target string `json:"target"`
	// Attempt is the delivery attempt that succeeded, from 1.
	Attempt int       `json:"attempt"`
	SentAt  time.Time `json:"sent_at"`
}

// NotificationFailed records that a notification could not be delivered
// and will not be tried again.
type NotificationFailed struct {
	DitherID uuid.UUID `json:"dither_id"`
	Channel  string    `json:"channel"`
	Target   string    `json:"target"`
	Attempt  int       `json:"attempt"`
	// Reason says why, without secrets.
	Reason   string    `json:"reason"`
	FailedAt time.Time `json:"failed_at"`
}

// DitherCompleted records the result of a dither.
type DitherCompleted struct {
	DitherID    uuid.UUID `json:"dither_id"`
	ResultKey   string    `json:"result_sha256"`
	ByteSize    int64     `json:"byte_size"`
	Width       int       `json:"width"`
	Height      int       `json:"height"`
	Colours     int       `json:"colours"`
	DurationMs  int64     `json:"duration_ms"`
	CompletedAt time.Time `json:"completed_at"`
}

// DitherFailed records that a dither could not be made.
type DitherFailed struct {
	DitherID    uuid.UUID `json:"dither_id"`
	Reason      string    `json:"reason"`
	CompletedAt time.Time `json:"completed_at"`
}

// ImageSynced records that the original was uploaded to the cloud.
type ImageSynced struct {
	SecureURL string `json:"secure_url"`
	PublicID  string `json:"public_id"`
}

// DitherSynced records that a dither result was uploaded to the cloud.
type DitherSynced struct {
	DitherID  uuid.UUID `json:"dither_id"`
	SecureURL string    `json:"secure_url"`
	PublicID  string    `json:"public_id"`
}

// ImageSyncFailed records that the original could not be uploaded to the
// cloud and will not be tried again. There is at most one, and none once
// the original is synced; a later ImageSynced (a new sync) supersedes it.
type ImageSyncFailed struct {
	// Reason says why, without secrets.
	Reason string `json:"reason"`
	// Attempt is the attempt that gave up, from 1.
	Attempt  int       `json:"attempt"`
	FailedAt time.Time `json:"failed_at"`
}

// DitherSyncFailed records that a completed dither's result could not be
// uploaded to the cloud, under the same rules as ImageSyncFailed.
type DitherSyncFailed struct {
	DitherID uuid.UUID `json:"dither_id"`
	Reason   string    `json:"reason"`
	Attempt  int       `json:"attempt"`
	FailedAt time.Time `json:"failed_at"`
}

// ImageDeleted records that the image was deleted. It ends the stream.
type ImageDeleted struct {
	DeletedAt time.Time `json:"deleted_at"`
}

// EventType implements Event.
func (ImageUploaded) EventType() string { return TypeImageUploaded }

// SchemaVersion implements Event.
func (ImageUploaded) SchemaVersion() int { return ImageUploadedVersion }

// EventType implements Event.
func (DitherRequested) EventType() string { return TypeDitherRequested }

// SchemaVersion implements Event.
func (DitherRequested) SchemaVersion() int { return DitherRequestedVersion }

// EventType implements Event.
func (DitherCompleted) EventType() string { return TypeDitherCompleted }

// SchemaVersion implements Event.
func (DitherCompleted) SchemaVersion() int { return DitherCompletedVersion }

// EventType implements Event.
func (DitherFailed) EventType() string { return TypeDitherFailed }

// SchemaVersion implements Event.
func (DitherFailed) SchemaVersion() int { return DitherFailedVersion }

// EventType implements Event.
func (ImageSynced) EventType() string { return TypeImageSynced }

// SchemaVersion implements Event.
func (ImageSynced) SchemaVersion() int { return ImageSyncedVersion }

// EventType implements Event.
func (DitherSynced) EventType() string { return TypeDitherSynced }

// SchemaVersion implements Event.
func (DitherSynced) SchemaVersion() int { return DitherSyncedVersion }

// EventType implements Event.
func (ImageSyncFailed) EventType() string { return TypeImageSyncFailed }

// SchemaVersion implements Event.
func (ImageSyncFailed) SchemaVersion() int { return ImageSyncFailedVersion }

// EventType implements Event.
func (DitherSyncFailed) EventType() string { return TypeDitherSyncFailed }

// SchemaVersion implements Event.
func (DitherSyncFailed) SchemaVersion() int { return DitherSyncFailedVersion }

// EventType implements Event.
func (ImageDeleted) EventType() string { return TypeImageDeleted }

// SchemaVersion implements Event.
func (ImageDeleted) SchemaVersion() int { return ImageDeletedVersion }

// EventType implements Event.
func (NotificationSent) EventType() string { return TypeNotificationSent }

// SchemaVersion implements Event.
func (NotificationSent) SchemaVersion() int { return NotificationSentVersion }

// EventType implements Event.
func (NotificationFailed) EventType() string { return TypeNotificationFailed }

// SchemaVersion implements Event.
func (NotificationFailed) SchemaVersion() int { return NotificationFailedVersion }
