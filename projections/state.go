package projections

import (
	"time"

	"github.com/google/uuid"

	"github.com/imageservice/imageservice/images"
)

// ImageFromState returns the read model of an image's state, as folded by
// images.Evolve. Times are in UTC, truncated to microseconds (the
// precision the stored read models keep), so a view built from a replay
// equals one read back from a store.
func ImageFromState(s images.Image) Image {
	return Image{
		ID: s.ID, Filename: s.Filename, ContentType: s.ContentType, ByteSize: s.ByteSize,
		Width: s.Width, Height: s.Height, SHA256: s.SHA256, Owner: s.Owner,
		Status: s.Status, URL: s.URL, Version: s.Version,
		CreatedAt: Micro(s.CreatedAt), UpdatedAt: Micro(s.UpdatedAt),
		DeletedAt: optional(s.DeletedAt), DitherCount: len(s.Dithers),
	}
}

// DithersFromState returns the read models of an image's dithers, in
// request order.
func DithersFromState(s images.Image) []Dither {
	out := make([]Dither, len(s.Dithers))
	for i, d := range s.Dithers {
		out[i] = DitherFromState(s.ID, i+1, d)
	}
	return out
}

// DitherFromState returns the read model of one dither of an image; seq is
// its place in the image's request order, from 1.
func DitherFromState(imageID uuid.UUID, seq int, d images.Dither) Dither {
	opts := d.Options
	if opts.ChannelLevels != nil {
		cl := *opts.ChannelLevels
		opts.ChannelLevels = &cl
	}
	return Dither{
		ID: d.ID, ImageID: imageID, Seq: seq, Options: opts, Status: d.Status,
		ResultKey: d.ResultKey, ByteSize: d.ByteSize, Width: d.Width, Height: d.Height,
		Colours: d.Colours, Error: d.Error, DurationMs: d.DurationMs,
		RequestedAt: Micro(d.RequestedAt), CompletedAt: optional(d.CompletedAt), URL: d.URL,
	}
}

// Micro returns t in UTC truncated to microseconds; the zero time stays zero.
func Micro(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.Truncate(time.Microsecond).UTC()
}

// optional returns nil for the zero time, else Micro(t).
func optional(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	m := Micro(t)
	return &m
}
