package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/imageservice/imageservice/images"
	"github.com/imageservice/imageservice/projections"
)

const imageColumns = `id, filename, content_type, byte_size, width, height, sha256, owner,
    status, url, version, created_at, updated_at, deleted_at, dither_count`

const ditherColumns = `id, image_id, seq, options, status, result_key, byte_size, width, height,
    colours, error, duration_ms, requested_at, completed_at, url`

// Lists of ids are bound as one JSON array and read with json_each, so
// that any number of ids is one statement with one parameter.
const (
	imageSQL       = `SELECT ` + imageColumns + ` FROM image_view WHERE id = ?`
	imagesByIDSQL  = `SELECT ` + imageColumns + ` FROM image_view WHERE id IN (SELECT value FROM json_each(?))`
	imagesFirstSQL = `SELECT ` + imageColumns + ` FROM image_view WHERE status <> 'DELETED'
ORDER BY created_at DESC, id DESC LIMIT ?`
	imagesAfterSQL = `SELECT ` + imageColumns + ` FROM image_view
WHERE status <> 'DELETED' AND (created_at, id) < (?, ?)
ORDER BY created_at DESC, id DESC LIMIT ?`
	ditherSQL  = `SELECT ` + ditherColumns + ` FROM dither_view WHERE id = ?`
	dithersSQL = `SELECT ` + ditherColumns + ` FROM dither_view
WHERE image_id = ? AND seq > ? ORDER BY seq LIMIT ?`
	// dithersByImageSQL numbers each image's dithers and keeps the first
	// ?2 of each: one query for a whole page of images.
	dithersByImageSQL = `SELECT ` + ditherColumns + ` FROM (
    SELECT d.*, row_number() OVER (PARTITION BY image_id ORDER BY seq) AS rn
    FROM dither_view d WHERE image_id IN (SELECT value FROM json_each(?1))
) WHERE rn <= ?2 ORDER BY image_id, seq`
)

// scanner is a *sql.Row or *sql.Rows.
type scanner interface{ Scan(dest ...any) error }

// Image implements projections.Reader.
func (m *ReadModel) Image(ctx context.Context, id uuid.UUID) (projections.Image, error) {
	img, err := scanImage(m.store.ReadDB().QueryRowContext(ctx, imageSQL, id))
	if errors.Is(err, sql.ErrNoRows) {
		return projections.Image{}, fmt.Errorf("image %s: %w", id, projections.ErrNotFound)
	}
	if err != nil {
		return projections.Image{}, fmt.Errorf("query image %s: %w", id, err)
	}
	return img, nil
}

// Images implements projections.Reader.
func (m *ReadModel) Images(ctx context.Context, first int, after projections.Cursor) (projections.Page[projections.Image], error) {
	if err := projections.CheckPageSize(first); err != nil {
		return projections.Page[projections.Image]{}, err
	}
	q, args := imagesFirstSQL, []any{first + 1}
	if after != "" {
		at, id, err := after.ImageKey()
		if err != nil {
			return projections.Page[projections.Image]{}, err
		}
		q, args = imagesAfterSQL, []any{micros(at), id, first + 1}
	}
	items, err := collect(ctx, m, q, args, scanImage)
	if err != nil {
		return projections.Page[projections.Image]{}, fmt.Errorf("query images: %w", err)
	}
	return projections.NewPage(items, first, after != "", projections.ImageCursor), nil
}

// ImagesByID implements projections.Reader with one query.
func (m *ReadModel) ImagesByID(ctx context.Context, ids []uuid.UUID) (map[uuid.UUID]projections.Image, error) {
	out := make(map[uuid.UUID]projections.Image, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	list, err := idList(ids)
	if err != nil {
		return nil, err
	}
	items, err := collect(ctx, m, imagesByIDSQL, []any{list}, scanImage)
	if err != nil {
		return nil, fmt.Errorf("query %d images by id: %w", len(ids), err)
	}
	for _, img := range items {
		out[img.ID] = img
	}
	return out, nil
}

// Dither implements projections.Reader.
func (m *ReadModel) Dither(ctx context.Context, id uuid.UUID) (projections.Dither, error) {
	d, err := scanDither(m.store.ReadDB().QueryRowContext(ctx, ditherSQL, id))
	if errors.Is(err, sql.ErrNoRows) {
		return projections.Dither{}, fmt.Errorf("dither %s: %w", id, projections.ErrNotFound)
	}
	if err != nil {
		return projections.Dither{}, fmt.Errorf("query dither %s: %w", id, err)
	}
	return d, nil
}

// Dithers implements projections.Reader. An unknown image has no dithers.
func (m *ReadModel) Dithers(ctx context.Context, imageID uuid.UUID, first int, after projections.Cursor) (projections.Page[projections.Dither], error) {
	if err := projections.CheckPageSize(first); err != nil {
		return projections.Page[projections.Dither]{}, err
	}
	seq := 0
	if after != "" {
		var err error
		if seq, err = after.DitherKey(); err != nil {
			return projections.Page[projections.Dither]{}, err
		}
	}
	items, err := collect(ctx, m, dithersSQL, []any{imageID, seq, first + 1}, scanDither)
	if err != nil {
		return projections.Page[projections.Dither]{}, fmt.Errorf("query dithers of image %s: %w", imageID, err)
	}
	return projections.NewPage(items, first, after != "", projections.DitherCursor), nil
}

// DithersByImage implements projections.Reader with one query.
func (m *ReadModel) DithersByImage(ctx context.Context, imageIDs []uuid.UUID, first int) (map[uuid.UUID]projections.Page[projections.Dither], error) {
	if err := projections.CheckPageSize(first); err != nil {
		return nil, err
	}
	if len(imageIDs) == 0 {
		return map[uuid.UUID]projections.Page[projections.Dither]{}, nil
	}
	list, err := idList(imageIDs)
	if err != nil {
		return nil, err
	}
	items, err := collect(ctx, m, dithersByImageSQL, []any{list, first + 1}, scanDither)
	if err != nil {
		return nil, fmt.Errorf("query dithers of %d images: %w", len(imageIDs), err)
	}
	return projections.DitherPages(imageIDs, items, first), nil
}

// collect runs a query on the read connections and scans every row.
func collect[T any](ctx context.Context, m *ReadModel, q string, args []any, scan func(scanner) (T, error)) ([]T, error) {
	rows, err := m.store.ReadDB().QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// scanImage scans one image_view row of imageColumns.
func scanImage(row scanner) (projections.Image, error) {
	var v projections.Image
	var status string
	var created, updated int64
	var deleted sql.NullInt64
	err := row.Scan(&v.ID, &v.Filename, &v.ContentType, &v.ByteSize, &v.Width, &v.Height, &v.SHA256,
		&v.Owner, &status, &v.URL, &v.Version, &created, &updated, &deleted, &v.DitherCount)
	if err != nil {
		return projections.Image{}, err
	}
	v.Status = images.Status(status)
	v.CreatedAt, v.UpdatedAt, v.DeletedAt = fromMicros(created), fromMicros(updated), optionalTime(deleted)
	return v, nil
}

// scanDither scans one dither_view row of ditherColumns.
func scanDither(row scanner) (projections.Dither, error) {
	var d projections.Dither
	var status, opts string
	var requested int64
	var completed sql.NullInt64
	err := row.Scan(&d.ID, &d.ImageID, &d.Seq, &opts, &status, &d.ResultKey, &d.ByteSize, &d.Width,
		&d.Height, &d.Colours, &d.Error, &d.DurationMs, &requested, &completed, &d.URL)
	if err != nil {
		return projections.Dither{}, err
	}
	if err := json.Unmarshal([]byte(opts), &d.Options); err != nil {
		return projections.Dither{}, fmt.Errorf("decode options of dither %s: %w", d.ID, err)
	}
	d.Status = images.DitherStatus(status)
	d.RequestedAt, d.CompletedAt = fromMicros(requested), optionalTime(completed)
	return d, nil
}

// idList encodes ids as the JSON array that json_each reads.
func idList(ids []uuid.UUID) (string, error) {
	b, err := json.Marshal(ids)
	if err != nil {
		return "", fmt.Errorf("encode %d ids: %w", len(ids), err)
	}
	return string(b), nil
}

// micros returns t as stored: unix microseconds.
func micros(t time.Time) int64 { return t.UnixMicro() }

// optionalMicros returns *t as stored, or nil (NULL).
func optionalMicros(t *time.Time) any {
	if t == nil {
		return nil
	}
	return micros(*t)
}

// fromMicros turns stored unix microseconds into a UTC time.
func fromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }

// optionalTime turns a nullable stored time into a UTC time or nil.
func optionalTime(us sql.NullInt64) *time.Time {
	if !us.Valid {
		return nil
	}
	t := fromMicros(us.Int64)
	return &t
}

// blobUseSQL counts the images using a blob, each once: as its original
// or through a dither's result.
const blobUseSQL = `SELECT coalesce(sum(status <> 'DELETED'), 0), coalesce(sum(status = 'DELETED'), 0)
FROM (
    SELECT i.id, i.status FROM image_view i WHERE i.sha256 = ?1
    UNION
    SELECT i.id, i.status FROM dither_view d JOIN image_view i ON i.id = d.image_id
    WHERE d.result_key = ?1 AND d.result_key <> ''
)`

// BlobUse implements projections.BlobUser.
func (m *ReadModel) BlobUse(ctx context.Context, key string) (projections.BlobUse, error) {
	var u projections.BlobUse
	if err := m.store.ReadDB().QueryRowContext(ctx, blobUseSQL, key).Scan(&u.Live, &u.Deleted); err != nil {
		return projections.BlobUse{}, fmt.Errorf("query the images using blob %s: %w", key, err)
	}
	return u, nil
}
