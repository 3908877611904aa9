// Package model holds the GraphQL API's object types: those generated
// from schema.graphql (models_gen.go) and the hand-written ones below,
// built from the domain's state or the read models.
package model

import (
	"errors"
	"io"
	"time"

	"github.com/google/uuid"
)

// Image is the GraphQL Image.
type Image struct {
	ID          string      `json:"id"`
	Filename    string      `json:"filename"`
	ContentType string      `json:"contentType"`
	ByteSize    int64       `json:"byteSize"`
	Width       int         `json:"width"`
	Height      int         `json:"height"`
	Sha256      string      `json:"sha256"`
	Status      ImageStatus `json:"status"`
	CreatedAt   time.Time   `json:"createdAt"`
	Version     int64       `json:"version"`

	// UUID is ID parsed.
	UUID uuid.UUID `json:"-"`
	// CloudURL is the original's Cloudinary URL once synced.
	CloudURL string `json:"-"`
	// Owner is the actor that uploaded the image.
	Owner string `json:"-"`
	// Snapshot marks an image as it was at Version (Query.imageAt): its
	// history ends there.
	Snapshot bool `json:"-"`
	// Dithers, when not nil, are the image's dithers already at hand (from
	// a mutation's state), so no query is needed for the first page.
	Dithers []*Dither `json:"-"`
	// FirstDithers, when not nil, is the first page of dithers, of
	// FirstDithersSize, fetched with a page of images in one query.
	FirstDithers     *DitherConnection `json:"-"`
	FirstDithersSize int               `json:"-"`
}

func (Image) IsNode()          {}
func (i Image) GetID() string  { return i.ID }
func (Dither) IsNode()         {}
func (d Dither) GetID() string { return d.ID }

// Dither is the GraphQL Dither.
type Dither struct {
	ID            string          `json:"id"`
	Levels        int             `json:"levels"`
	ChannelLevels *ChannelLevels  `json:"channelLevels,omitempty"`
	Algorithm     DitherAlgorithm `json:"algorithm"`
	Serpentine    bool            `json:"serpentine"`
	Strength      float64         `json:"strength"`
	ColorSpace    ColorSpace      `json:"colorSpace"`
	Grayscale     bool            `json:"grayscale"`
	Palette       *string         `json:"palette,omitempty"`
	Status        DitherStatus    `json:"status"`
	Error         *string         `json:"error,omitempty"`
	DurationMs    *int64          `json:"durationMs,omitempty"`
	ByteSize      *int64          `json:"byteSize,omitempty"`
	Width         *int            `json:"width,omitempty"`
	Height        *int            `json:"height,omitempty"`
	Colours       *int            `json:"colours,omitempty"`
	RequestedAt   time.Time       `json:"requestedAt"`
	CompletedAt   *time.Time      `json:"completedAt,omitempty"`

	UUID    uuid.UUID `json:"-"`
	ImageID uuid.UUID `json:"-"`
	// Parent, when set, is the image this dither was listed under.
	Parent    *Image `json:"-"`
	ResultKey string `json:"-"`
	CloudURL  string `json:"-"`
	// KnownNotifications, when not nil, are the dither's notifications
	// already at hand (from a mutation's state).
	KnownNotifications []Notification `json:"-"`
}

// Event is the GraphQL Event: a recorded event of an image's stream.
type Event struct {
	ID            string    `json:"id"`
	Position      string    `json:"position"`
	StreamVersion int64     `json:"streamVersion"`
	Type          string    `json:"type"`
	SchemaVersion int       `json:"schemaVersion"`
	RecordedAt    time.Time `json:"recordedAt"`
	Data          JSON      `json:"data"`
	Metadata      JSON      `json:"metadata"`
}

// JSON is a JSON value passed through as it is.
type JSON []byte

// MarshalGQL writes the JSON as it is.
func (j JSON) MarshalGQL(w io.Writer) { _, _ = w.Write(j) }

// UnmarshalGQL refuses input: JSON is an output type only.
func (j *JSON) UnmarshalGQL(any) error { return errors.New("JSON is an output type") }
