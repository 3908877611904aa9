package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/imageservice/imageservice/eventstore"
	"github.com/imageservice/imageservice/images"
	"github.com/imageservice/imageservice/projections"
)

const imageColumns = `id, filename, content_type, byte_size, width, height, sha256, owner,
    status, url, version, created_at, updated_at, deleted_at, dither_count`

const ditherColumns = `id, image_id, seq, options, status, result_key, byte_size, width, height,
    colours, error, duration_ms, requested_at, completed_at, url`

const (
	imageSQL       = `SELECT ` + imageColumns + ` FROM image_view WHERE id = $1`
	imagesByIDSQL  = `SELECT ` + imageColumns + ` FROM image_view WHERE id = ANY($1)`
	imagesFirstSQL = `SELECT ` + imageColumns + ` FROM image_view WHERE status <> 'DELETED'
ORDER BY created_at DESC, id DESC LIMIT $1`
	imagesAfterSQL = `SELECT ` + imageColumns + ` FROM image_view
WHERE status <> 'DELETED' AND (created_at, id) < ($2, $3)
ORDER BY created_at DESC, id DESC LIMIT $1`
	ditherSQL  = `SELECT ` + ditherColumns + ` FROM dither_view WHERE id = $1`
	dithersSQL = `SELECT ` + ditherColumns + ` FROM dither_view
WHERE image_id = $1 AND seq > $2 ORDER BY seq LIMIT $3`
	// dithersByImageSQL numbers each image's dithers and keeps the first
	// $2 of each: one query for a whole page of images.
	dithersByImageSQL = `SELECT ` + ditherColumns + ` FROM (
    SELECT d.*, row_number() OVER (PARTITION BY image_id ORDER BY seq) AS rn
    FROM dither_view d WHERE image_id = ANY($1)
) ranked WHERE rn <= $2 ORDER BY image_id, seq`
)

// scanner is a pgx.Row or pgx.Rows.
type scanner interface{ Scan(dest ...any) error }

// Image implements projections.Reader.
func (m *ReadModel) Image(ctx context.Context, id uuid.UUID) (projections.Image, error) {
	img, err := scanImage(m.pool.QueryRow(ctx, imageSQL, id))
	if errors.Is(err, pgx.ErrNoRows) {
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
	sql, args := imagesFirstSQL, []any{first + 1}
	if after != "" {
		at, id, err := after.ImageKey()
		if err != nil {
			return projections.Page[projections.Image]{}, err
		}
		sql, args = imagesAfterSQL, []any{first + 1, at, id}
	}
	items, err := collect(ctx, m, sql, args, scanImage)
	if err != nil {
		return projections.Page[projections.Image]{}, fmt.Errorf("query images: %w", err)
	}
	return projections.NewPage(items, first, after != "", projections.ImageCursor), nil
}

// ImagesByID implements projections.Reader.
func (m *ReadModel) ImagesByID(ctx context.Context, ids []uuid.UUID) (map[uuid.UUID]projections.Image, error) {
	out := make(map[uuid.UUID]projections.Image, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	items, err := collect(ctx, m, imagesByIDSQL, []any{ids}, scanImage)
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
	d, err := scanDither(m.pool.QueryRow(ctx, ditherSQL, id))
	if errors.Is(err, pgx.ErrNoRows) {
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
	items, err := collect(ctx, m, dithersByImageSQL, []any{imageIDs, first + 1}, scanDither)
	if err != nil {
		return nil, fmt.Errorf("query dithers of %d images: %w", len(imageIDs), err)
	}
	return projections.DitherPages(imageIDs, items, first), nil
}

// collect runs a query and scans every row.
func collect[T any](ctx context.Context, m *ReadModel, sql string, args []any, scan func(scanner) (T, error)) ([]T, error) {
	rows, err := m.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (T, error) { return scan(row) })
}

// scanImage scans one image_view row of imageColumns.
func scanImage(row scanner) (projections.Image, error) { return scanImageWith(row) }

// scanImageWith scans a row of imageColumns followed by columns scanned
// into more.
func scanImageWith(row scanner, more ...any) (projections.Image, error) {
	var v projections.Image
	var status string
	err := row.Scan(append([]any{&v.ID, &v.Filename, &v.ContentType, &v.ByteSize, &v.Width, &v.Height, &v.SHA256,
		&v.Owner, &status, &v.URL, &v.Version, &v.CreatedAt, &v.UpdatedAt, &v.DeletedAt, &v.DitherCount}, more...)...)
	if err != nil {
		return projections.Image{}, err
	}
	v.Status = images.Status(status)
	v.CreatedAt, v.UpdatedAt, v.DeletedAt = v.CreatedAt.UTC(), v.UpdatedAt.UTC(), utc(v.DeletedAt)
	return v, nil
}

// scanDither scans one dither_view row of ditherColumns.
func scanDither(row scanner) (projections.Dither, error) {
	var d projections.Dither
	var status string
	err := row.Scan(&d.ID, &d.ImageID, &d.Seq, &d.Options, &status, &d.ResultKey, &d.ByteSize, &d.Width,
		&d.Height, &d.Colours, &d.Error, &d.DurationMs, &d.RequestedAt, &d.CompletedAt, &d.URL)
	if err != nil {
		return projections.Dither{}, err
	}
	d.Status = images.DitherStatus(status)
	d.RequestedAt, d.CompletedAt = d.RequestedAt.UTC(), utc(d.CompletedAt)
	return d, nil
}

// utc returns t in UTC, or nil.
func utc(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// imageWithDithersSQL is an image, the first $2 of its dithers and the
// read model's checkpoint (subscription $3) in one statement, so one
// snapshot: one row per dither, or one row of NULL dither columns when the
// image has none; no row when there is no such image.
var imageWithDithersSQL = `SELECT ` + prefixed("i.", imageColumns) + `, ` + prefixed("d.", ditherColumns) + `,
    cp.transaction_id, cp.global_position
FROM image_view i LEFT JOIN LATERAL (
    SELECT * FROM dither_view WHERE image_id = i.id ORDER BY seq LIMIT $2
) d ON true
LEFT JOIN checkpoints cp ON cp.subscription = $3 AND cp.partition = 0
WHERE i.id = $1 ORDER BY d.seq`

// ImageWithDithers returns an image and the first page of its dithers in
// one statement, for the API's image(id) with its dithers.
func (m *ReadModel) ImageWithDithers(ctx context.Context, id uuid.UUID, first int) (projections.Image, projections.Page[projections.Dither], error) {
	img, page, _, err := m.ImageWithDithersAt(ctx, id, first)
	return img, page, err
}

// ImageWithDithersAt is ImageWithDithers that also returns the read
// model's checkpoint as of the same snapshot: the image and its dithers
// hold every event of the log up to that position.
func (m *ReadModel) ImageWithDithersAt(ctx context.Context, id uuid.UUID, first int) (projections.Image, projections.Page[projections.Dither], eventstore.Position, error) {
	var none projections.Page[projections.Dither]
	var at eventstore.Position
	if err := projections.CheckPageSize(first); err != nil {
		return projections.Image{}, none, at, err
	}
	rows, err := m.pool.Query(ctx, imageWithDithersSQL, id, first+1, m.key().Subscription)
	if err != nil {
		return projections.Image{}, none, at, fmt.Errorf("query image %s with dithers: %w", id, err)
	}
	defer rows.Close()
	var (
		img   projections.Image
		found bool
		items []projections.Dither
	)
	for rows.Next() {
		var d nullableDither
		var txid, global *int64
		if img, err = scanImageWith(rows, append(d.fields(), &txid, &global)...); err != nil {
			return projections.Image{}, none, at, fmt.Errorf("scan image %s with dithers: %w", id, err)
		}
		if txid != nil && global != nil {
			at = eventstore.Position{TransactionID: uint64(*txid), Global: *global}
		}
		found = true
		if dither, ok := d.dither(); ok {
			items = append(items, dither)
		}
	}
	if err := rows.Err(); err != nil {
		return projections.Image{}, none, at, fmt.Errorf("query image %s with dithers: %w", id, err)
	}
	if !found {
		return projections.Image{}, none, at, fmt.Errorf("image %s: %w", id, projections.ErrNotFound)
	}
	return img, projections.DitherPages([]uuid.UUID{id}, items, first)[id], at, nil
}

// nullableDither receives the dither columns of an outer join, NULL when
// the image has no dither.
type nullableDither struct {
	id, imageID                 *uuid.UUID
	seq, width, height, colours *int
	options                     *images.DitherOptions
	status, resultKey, err, url *string
	byteSize, durationMs        *int64
	requestedAt, completedAt    *time.Time
}

// fields are the scan targets, in ditherColumns order.
func (n *nullableDither) fields() []any {
	return []any{&n.id, &n.imageID, &n.seq, &n.options, &n.status, &n.resultKey, &n.byteSize, &n.width,
		&n.height, &n.colours, &n.err, &n.durationMs, &n.requestedAt, &n.completedAt, &n.url}
}

// dither is the scanned dither, or false when the columns were NULL.
func (n *nullableDither) dither() (projections.Dither, bool) {
	if n.id == nil {
		return projections.Dither{}, false
	}
	d := projections.Dither{
		ID: *n.id, ImageID: *n.imageID, Seq: *n.seq, Options: *n.options, Status: images.DitherStatus(*n.status),
		ResultKey: *n.resultKey, ByteSize: *n.byteSize, Width: *n.width, Height: *n.height, Colours: *n.colours,
		Error: *n.err, DurationMs: *n.durationMs, RequestedAt: n.requestedAt.UTC(), CompletedAt: utc(n.completedAt), URL: *n.url,
	}
	return d, true
}

// prefixed qualifies each of a comma-separated column list with prefix.
func prefixed(prefix, columns string) string {
	cols := strings.Split(columns, ",")
	for i, c := range cols {
		cols[i] = prefix + strings.TrimSpace(c)
	}
	return strings.Join(cols, ", ")
}

// blobUseSQL counts the images using a blob, each once: as its original
// or through a dither's result.
const blobUseSQL = `SELECT count(*) FILTER (WHERE status <> 'DELETED'), count(*) FILTER (WHERE status = 'DELETED')
FROM (
    SELECT i.id, i.status FROM image_view i WHERE i.sha256 = $1
    UNION
    SELECT i.id, i.status FROM dither_view d JOIN image_view i ON i.id = d.image_id
    WHERE d.result_key = $1 AND d.result_key <> ''
) uses`

// BlobUse implements projections.BlobUser.
func (m *ReadModel) BlobUse(ctx context.Context, key string) (projections.BlobUse, error) {
	var u projections.BlobUse
	if err := m.pool.QueryRow(ctx, blobUseSQL, key).Scan(&u.Live, &u.Deleted); err != nil {
		return projections.BlobUse{}, fmt.Errorf("query the images using blob %s: %w", key, err)
	}
	return u, nil
}
