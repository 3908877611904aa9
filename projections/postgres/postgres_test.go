package postgres_test

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/imageservice/imageservice/eventstore"
	"github.com/imageservice/imageservice/images"
	"github.com/imageservice/imageservice/projections"
	"github.com/imageservice/imageservice/projections/postgres"
)

func TestMigrateIsIdempotent(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	if err := postgres.Migrate(ctx, e.pool); err != nil {
		t.Fatal(err)
	}
	pending, err := postgres.Pending(ctx, e.pool)
	if err != nil || pending {
		t.Fatalf("Pending = %v, %v; want false", pending, err)
	}
}

// TestDithersByImageOneQuery loads the first dithers of 20 images (and an
// unknown one) with one query.
func TestDithersByImageOneQuery(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.startProjector(t)
	var all []*image
	for i := range 20 {
		all = append(all, e.upload(t, t0.Add(time.Duration(i)*time.Second), i%5))
	}
	e.waitFor(t, lastPos(all...))
	unknown := uuid.New()
	ctx, queries := e.tracer.counted()
	pages, err := e.model.DithersByImage(ctx, append(ids(all...), unknown), 2)
	if err != nil {
		t.Fatal(err)
	}
	if n := queries(); n != 1 {
		t.Errorf("DithersByImage ran %d queries, want 1", n)
	}
	for _, img := range all {
		want := projections.DithersFromState(e.replay(t, img.state.ID))
		page := pages[img.state.ID]
		if !reflect.DeepEqual(page.Items, want[:min(2, len(want))]) || page.HasNext != (len(want) > 2) ||
			len(page.Cursors) != len(page.Items) {
			t.Errorf("image with %d dithers: page %+v", len(want), page)
		}
	}
	if page, ok := pages[unknown]; !ok || len(page.Items) != 0 {
		t.Errorf("unknown image: page %+v, present %v", page, ok)
	}
	ctx, queries = e.tracer.counted()
	if imgs, err := e.model.ImagesByID(ctx, ids(all...)); err != nil || len(imgs) != 20 || queries() != 1 {
		t.Errorf("ImagesByID: %d images, %v, %d queries", len(imgs), err, queries())
	}
}

// TestFailedBatchKeepsCheckpoint: a batch whose writes fail is rolled back
// with its checkpoint, and applied once the cause is gone.
func TestFailedBatchKeepsCheckpoint(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	if _, err := e.pool.Exec(ctx, `ALTER TABLE image_view ADD CONSTRAINT no_poison CHECK (owner <> 'poison')`); err != nil {
		t.Fatal(err)
	}
	e.startProjector(t)
	good := e.upload(t, t0, 0)
	e.waitFor(t, good.pos)
	poison := &image{}
	e.apply(t, poison)(images.Upload(images.UploadImage{ImageID: uuid.New(), Filename: "p.png",
		ContentType: "image/png", ByteSize: 1, Width: 1, Height: 1, SHA256: keyA, Owner: "poison", Now: t0}))
	later := e.upload(t, t0.Add(time.Second), 0)
	for range 5 { // the batch keeps failing: nothing moves
		time.Sleep(100 * time.Millisecond)
		if cp := e.checkpoint(t); cp != good.pos {
			t.Fatalf("checkpoint moved to %s past a failed batch (want %s)", cp, good.pos)
		}
		if _, err := e.model.Image(ctx, later.state.ID); !errors.Is(err, projections.ErrNotFound) {
			t.Fatalf("image of a failed batch is visible: %v", err)
		}
	}
	if _, err := e.pool.Exec(ctx, `ALTER TABLE image_view DROP CONSTRAINT no_poison`); err != nil {
		t.Fatal(err)
	}
	e.waitFor(t, later.pos)
	for _, img := range []*image{poison, later} {
		if _, err := e.model.Image(ctx, img.state.ID); err != nil {
			t.Errorf("image %s after recovery: %v", img.state.ID, err)
		}
	}
}

// TestImageWithDithers reads an image and its first dithers in one
// statement, and agrees with Image and Dithers read apart: with no dither,
// with fewer dithers than the page, with more, and for an unknown image.
func TestImageWithDithers(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.startProjector(t)
	var all []*image
	for i, n := range []int{0, 1, 3, 5} {
		all = append(all, e.upload(t, t0.Add(time.Duration(i)*time.Second), n))
	}
	e.waitFor(t, lastPos(all...))
	ctx := context.Background()
	for _, img := range all {
		id := img.state.ID
		wantImg, err := e.model.Image(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		wantPage, err := e.model.Dithers(ctx, id, 3, "")
		if err != nil {
			t.Fatal(err)
		}
		qctx, queries := e.tracer.counted()
		gotImg, gotPage, err := e.model.ImageWithDithers(qctx, id, 3)
		if err != nil {
			t.Fatal(err)
		}
		if n := queries(); n != 1 {
			t.Errorf("ImageWithDithers ran %d statements, want 1", n)
		}
		if !reflect.DeepEqual(gotImg, wantImg) {
			t.Errorf("image %s:\n got %+v\nwant %+v", id, gotImg, wantImg)
		}
		if !reflect.DeepEqual(gotPage, wantPage) {
			t.Errorf("dithers of an image with %d:\n got %+v\nwant %+v", len(img.state.Dithers), gotPage, wantPage)
		}
	}
	// The checkpoint comes from the same snapshot as the rows.
	if _, _, at, err := e.model.ImageWithDithersAt(ctx, all[0].state.ID, 3); err != nil || at != e.checkpoint(t) || at == (eventstore.Position{}) {
		t.Errorf("ImageWithDithersAt's checkpoint = %v, %v; want the projection's %v", at, err, e.checkpoint(t))
	}
	if _, _, err := e.model.ImageWithDithers(ctx, uuid.New(), 3); !errors.Is(err, projections.ErrNotFound) {
		t.Errorf("unknown image: %v, want ErrNotFound", err)
	}
	if _, _, err := e.model.ImageWithDithers(ctx, all[0].state.ID, 0); err == nil {
		t.Error("a page of 0 was accepted")
	}
}
