// Package projections holds the read models of images and dithers: the
// denormalised views that the GraphQL layer queries, and the interface it
// queries them through. Every view is a projection of the event log,
// folded with the same images.Evolve that replays a stream, so a read
// model can be dropped and rebuilt from the log at any time.
//
// The package is backend-independent; projections/postgres stores the
// views in PostgreSQL next to the log and keeps them up to date.
package projections

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"

	"github.com/imageservice/imageservice/images"
)

// MaxPageSize is the largest page a query returns.
const MaxPageSize = 100

// Errors that readers return; test for them with errors.Is.
var (
	// ErrNotFound is a query for an image or dither the model does not hold.
	ErrNotFound = errors.New("projections: not found")
	// ErrInvalidPage is a page size outside 1..MaxPageSize.
	ErrInvalidPage = errors.New("projections: page size must be between 1 and 100")
	// ErrInvalidCursor is a cursor that was not handed out by this package
	// for the query it is used with.
	ErrInvalidCursor = errors.New("projections: invalid cursor")
)

// Image is the read model of one image.
type Image struct {
	ID          uuid.UUID
	Filename    string
	ContentType string
	ByteSize    int64
	Width       int
	Height      int
	// SHA256 is the blob key of the original.
	SHA256 string
	Owner  string
	Status images.Status
	// URL is the cloud copy of the original, or "" until it is synced.
	URL string
	// Version is the stream version of the last event folded in.
	Version   int64
	CreatedAt time.Time
	UpdatedAt time.Time
	// DeletedAt is set once the image is deleted.
	DeletedAt *time.Time
	// DitherCount is the number of dithers ever requested.
	DitherCount int
}

// Dither is the read model of one dither of an image.
type Dither struct {
	ID      uuid.UUID
	ImageID uuid.UUID
	// Seq is the dither's place in its image's request order, from 1.
	Seq     int
	Options images.DitherOptions
	Status  images.DitherStatus
	// ResultKey is the blob key of the result once COMPLETED.
	ResultKey  string
	ByteSize   int64
	Width      int
	Height     int
	Colours    int
	Error      string
	DurationMs int64
	// RequestedAt is when the dither was requested.
	RequestedAt time.Time
	// CompletedAt is set once the dither is COMPLETED or FAILED.
	CompletedAt *time.Time
	// URL is the cloud copy of the result, or "" until it is synced.
	URL string
}

// Page is one page of a forward, keyset-paginated query.
type Page[T any] struct {
	// Items are the page's items in the query's order.
	Items []T
	// HasNext reports that more items follow the last one.
	HasNext bool
	// HasPrevious reports that the page started after a cursor.
	HasPrevious bool
	// Cursors holds one cursor per item: pass an item's cursor as after
	// to get the items that follow it.
	Cursors []Cursor
}

// EndCursor returns the cursor of the last item, or "" for an empty page.
func (p Page[T]) EndCursor() Cursor {
	if len(p.Cursors) == 0 {
		return ""
	}
	return p.Cursors[len(p.Cursors)-1]
}

// Reader is the query side of the read models, as the GraphQL layer uses it.
// Every method honours its context.
type Reader interface {
	// Image returns one image, deleted images included (with status
	// DELETED), or ErrNotFound.
	Image(ctx context.Context, id uuid.UUID) (Image, error)
	// Images returns a page of the images that are not deleted, newest
	// first (by creation time, then id, both descending), after the
	// cursor ("" for the first page). first must be 1..MaxPageSize
	// (ErrInvalidPage); a cursor of another query is ErrInvalidCursor.
	Images(ctx context.Context, first int, after Cursor) (Page[Image], error)
	// ImagesByID returns the images with the given ids, deleted ones
	// included, in one query; ids the model does not hold are absent.
	ImagesByID(ctx context.Context, ids []uuid.UUID) (map[uuid.UUID]Image, error)
	// Dither returns one dither or ErrNotFound.
	Dither(ctx context.Context, id uuid.UUID) (Dither, error)
	// Dithers returns a page of an image's dithers in request order (Seq
	// ascending) after the cursor ("" for the first page).
	Dithers(ctx context.Context, imageID uuid.UUID, first int, after Cursor) (Page[Dither], error)
	// DithersByImage returns the first page of dithers of each image, in
	// one query; every requested id has an entry, empty when the image has
	// no dithers or is unknown.
	DithersByImage(ctx context.Context, imageIDs []uuid.UUID, first int) (map[uuid.UUID]Page[Dither], error)
}

// CheckPageSize returns ErrInvalidPage (wrapped, with the value) unless
// first is within 1..MaxPageSize.
func CheckPageSize(first int) error {
	if first < 1 || first > MaxPageSize {
		return errorf(ErrInvalidPage, "first is %d", first)
	}
	return nil
}
