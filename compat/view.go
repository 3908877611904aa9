package compat

import (
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/imageservice/imageservice/images"
	"github.com/imageservice/imageservice/projections"
)

// The old upload service's statuses.
const (
	// StatusPending: no dither of the image has completed yet, and one is
	// on its way (or none was ever requested).
	StatusPending = "PENDING"
	// StatusFinished: a dither completed; url_dither is the latest one's.
	StatusFinished = "FINISHED"
	// StatusDitherDeleted: there is no dither and none is on its way (every
	// dither requested failed). The old service used it when its dither
	// was deleted; either way url_dither is "" and waiting is pointless.
	StatusDitherDeleted = "DITHER_DELETED"
)

// record is an image as the old services saw it, built from an image's
// state or from the read models.
type record struct {
	id       uuid.UUID
	filename string
	url      string
	dithers  []ditherRecord
}

// ditherRecord is one dither of a record, in request order.
type ditherRecord struct {
	id          uuid.UUID
	channels    int
	status      images.DitherStatus
	url         string // "" unless completed
	completedAt time.Time
}

// fromState builds the record of an image's state.
func (a *API) fromState(s images.Image) record {
	r := record{id: s.ID, filename: s.Filename, url: a.blobOr(s.URL, s.SHA256)}
	for _, d := range s.Dithers {
		dr := ditherRecord{id: d.ID, channels: d.Options.Levels, status: d.Status, completedAt: d.CompletedAt}
		if d.Status == images.DitherStatusCompleted {
			dr.url = a.blobOr(d.URL, d.ResultKey)
		}
		r.dithers = append(r.dithers, dr)
	}
	return r
}

// fromReadModel builds the record of an image's read models.
func (a *API) fromReadModel(img projections.Image, ds []projections.Dither) record {
	r := record{id: img.ID, filename: img.Filename, url: a.blobOr(img.URL, img.SHA256)}
	for _, d := range ds {
		dr := ditherRecord{id: d.ID, channels: d.Options.Levels, status: d.Status}
		if d.CompletedAt != nil {
			dr.completedAt = *d.CompletedAt
		}
		if d.Status == images.DitherStatusCompleted {
			dr.url = a.blobOr(d.URL, d.ResultKey)
		}
		r.dithers = append(r.dithers, dr)
	}
	return r
}

// blobOr returns the cloud URL when there is one, else the blob's URL.
func (a *API) blobOr(cloudURL, key string) string {
	if cloudURL != "" || key == "" {
		return cloudURL
	}
	return a.cfg.BlobURL(key)
}

// completed returns the completed dithers, oldest completion first (ties
// in request order).
func (r record) completed() []ditherRecord {
	var out []ditherRecord
	for _, d := range r.dithers {
		if d.status == images.DitherStatusCompleted {
			out = append(out, d)
		}
	}
	slices.SortStableFunc(out, func(x, y ditherRecord) int { return x.completedAt.Compare(y.completedAt) })
	return out
}

// latest returns the dither that completed last.
func (r record) latest() (ditherRecord, bool) {
	c := r.completed()
	if len(c) == 0 {
		return ditherRecord{}, false
	}
	return c[len(c)-1], true
}

// status returns the old status and url_dither of the image: FINISHED
// with the latest completed dither's URL; else PENDING while a dither is
// pending or none was requested; else (every dither failed)
// DITHER_DELETED.
func (r record) status() (string, string) {
	if d, ok := r.latest(); ok {
		return StatusFinished, d.url
	}
	pending := slices.ContainsFunc(r.dithers, func(d ditherRecord) bool { return d.status == images.DitherStatusPending })
	if pending || len(r.dithers) == 0 {
		return StatusPending, ""
	}
	return StatusDitherDeleted, ""
}

// OldID is the integer id the old services' "id" fields carry for an
// image or dither uuid. The old ids were serials of their tables; the new
// model has uuids only, so the id is derived from the uuid: the first 8
// bytes of its SHA-256, masked to 53 bits (exact in JSON numbers and
// JavaScript), never 0. It is stable (the same uuid always gives the same
// id) and positive, but it is not ordered, and no endpoint takes it: the
// old APIs addressed everything by uuid.
func OldID(id uuid.UUID) int64 {
	sum := sha256.Sum256(id[:])
	n := int64(binary.BigEndian.Uint64(sum[:8]) & (1<<53 - 1))
	return cmp.Or(n, 1)
}

// imageFields are the upload service's fields of an image, as returned by
// GET /images/{uuid}.
type imageFields struct {
	UUID      string `json:"uuid"`
	Filename  string `json:"filename"`
	Status    string `json:"status"`
	URL       string `json:"url"`
	URLDither string `json:"url_dither"`
}

// imageJSON is an image in the upload service's list and upload answers.
type imageJSON struct {
	ID int64 `json:"id"`
	imageFields
}

// ditherJSON is a completed dither as the dithering service returns it;
// uuid is the original image's.
type ditherJSON struct {
	ID        int64  `json:"id"`
	UUID      string `json:"uuid"`
	Channels  int    `json:"channels"`
	URLDither string `json:"url_dither"`
}

// ditherRequestJSON answers a dither request: the new dither (not done
// yet, so url_dither is ""), its uuid and its status.
type ditherRequestJSON struct {
	ditherJSON
	DitherID string `json:"dither_id"`
	Status   string `json:"status"`
}

// fields returns the upload service's fields of the record.
func (r record) fields() imageFields {
	status, urlDither := r.status()
	return imageFields{UUID: r.id.String(), Filename: r.filename, Status: status, URL: r.url, URLDither: urlDither}
}

// json returns the record as an item of the upload service's list.
func (r record) json() imageJSON { return imageJSON{ID: OldID(r.id), imageFields: r.fields()} }

// ditherJSON returns one dither of the record as the dithering service shows it.
func (r record) ditherJSON(d ditherRecord) ditherJSON {
	return ditherJSON{ID: OldID(d.id), UUID: r.id.String(), Channels: d.channels, URLDither: d.url}
}
