package compat

import (
	"context"
	"fmt"
	"slices"

	"github.com/google/uuid"

	"github.com/imageservice/imageservice/projections"
)

// records returns the images that are not deleted and that the principal
// of ctx may read, with their dithers, from the read models: at most
// MaxList of them (the newest), in upload order, oldest first, as the old
// services listed their serial rows.
func (a *API) records(ctx context.Context) ([]record, error) {
	var out []record
	var after projections.Cursor
	for len(out) < a.cfg.MaxList {
		page, err := a.cfg.Reads.Images(ctx, min(projections.MaxPageSize, a.cfg.MaxList-len(out)), after)
		if err != nil {
			return nil, fmt.Errorf("list images: %w", err)
		}
		mine := slices.DeleteFunc(page.Items, func(img projections.Image) bool { return !a.visible(ctx, img.Owner) })
		recs, err := a.withDithers(ctx, mine)
		if err != nil {
			return nil, err
		}
		out = append(out, recs...)
		if !page.HasNext {
			break
		}
		after = page.EndCursor()
	}
	slices.Reverse(out)
	return out, nil
}

// withDithers reads the dithers of a page of images in one query (more
// for an image with more than a page of dithers).
func (a *API) withDithers(ctx context.Context, imgs []projections.Image) ([]record, error) {
	ids := make([]uuid.UUID, len(imgs))
	for i, img := range imgs {
		ids[i] = img.ID
	}
	pages, err := a.cfg.Reads.DithersByImage(ctx, ids, projections.MaxPageSize)
	if err != nil {
		return nil, fmt.Errorf("list dithers: %w", err)
	}
	out := make([]record, len(imgs))
	for i, img := range imgs {
		ds, err := a.allDithers(ctx, img.ID, pages[img.ID])
		if err != nil {
			return nil, err
		}
		out[i] = a.fromReadModel(img, ds)
	}
	return out, nil
}

// allDithers returns the dithers of the first page and of every page after it.
func (a *API) allDithers(ctx context.Context, id uuid.UUID, page projections.Page[projections.Dither]) ([]projections.Dither, error) {
	ds := page.Items
	for page.HasNext {
		var err error
		page, err = a.cfg.Reads.Dithers(ctx, id, projections.MaxPageSize, page.EndCursor())
		if err != nil {
			return nil, fmt.Errorf("list dithers of image %s: %w", id, err)
		}
		ds = append(ds, page.Items...)
	}
	return ds, nil
}
