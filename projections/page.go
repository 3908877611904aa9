package projections

import "github.com/google/uuid"

// NewPage cuts the first+1 rows that a keyset query fetched to a page of
// at most first items: HasNext reports the extra row, and every item gets
// its cursor. Items is never nil.
func NewPage[T any](items []T, first int, hasPrevious bool, cursor func(T) Cursor) Page[T] {
	p := Page[T]{HasPrevious: hasPrevious}
	if len(items) > first {
		items, p.HasNext = items[:first], true
	}
	p.Items = items
	if p.Items == nil {
		p.Items = []T{}
	}
	p.Cursors = make([]Cursor, len(items))
	for i, it := range items {
		p.Cursors[i] = cursor(it)
	}
	return p
}

// ImageCursor returns the cursor of an image in Images.
func ImageCursor(img Image) Cursor { return NewImageCursor(img.CreatedAt, img.ID) }

// DitherCursor returns the cursor of a dither in Dithers.
func DitherCursor(d Dither) Cursor { return NewDitherCursor(d.Seq) }

// DitherPages splits the rows of a DithersByImage query (each image's
// first first+1 dithers, in Seq order) into one page per requested image,
// empty for images without dithers.
func DitherPages(imageIDs []uuid.UUID, rows []Dither, first int) map[uuid.UUID]Page[Dither] {
	byImage := make(map[uuid.UUID][]Dither, len(imageIDs))
	for _, d := range rows {
		byImage[d.ImageID] = append(byImage[d.ImageID], d)
	}
	out := make(map[uuid.UUID]Page[Dither], len(imageIDs))
	for _, id := range imageIDs {
		out[id] = NewPage(byImage[id], first, false, DitherCursor)
	}
	return out
}
