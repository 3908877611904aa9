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
	"github.com/imageservice/imageservice/projections/projectiontest"
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
	e.StartProjector(t)
	var all []*projectiontest.Image
	for i := range 20 {
		all = append(all, e.Upload(t, t0.Add(time.Duration(i)*time.Second), i%5))
	}
	e.WaitFor(t, projectiontest.LastPos(all...))
	unknown := uuid.New()
	ctx, queries := e.tracer.counted()
	pages, err := e.model.DithersByImage(ctx, append(projectiontest.IDs(all...), unknown), 2)
	if err != nil {
		t.Fatal(err)
	}
	if n := queries(); n != 1 {
		t.Errorf("DithersByImage ran %d queries, want 1", n)
	}
	for _, img := range all {
		want := projections.DithersFromState(e.Replay(t, img.State.ID))
		page := pages[img.State.ID]
		if !reflect.DeepEqual(page.Items, want[:min(2, len(want))]) || page.HasNext != (len(want) > 2) ||
			len(page.Cursors) != len(page.Items) {
			t.Errorf("image with %d dithers: page %+v", len(want), page)
		}
	}
	if page, ok := pages[unknown]; !ok || len(page.Items) != 0 {
		t.Errorf("unknown image: page %+v, present %v", page, ok)
	}
	ctx, queries = e.tracer.counted()
	if imgs, err := e.model.ImagesByID(ctx, projectiontest.IDs(all...)); err != nil || len(imgs) != 20 || queries() != 1 {
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
	e.StartProjector(t)
	good := e.Upload(t, t0, 0)
	e.WaitFor(t, good.Pos)
	poison := &projectiontest.Image{}
	e.Apply(t, poison)(images.Upload(images.UploadImage{ImageID: uuid.New(), Filename: "p.png",
		ContentType: "image/png", ByteSize: 1, Width: 1, Height: 1, SHA256: keyA, Owner: "poison", Now: t0}))
	later := e.Upload(t, t0.Add(time.Second), 0)
	for range 5 { // the batch keeps failing: nothing moves
		time.Sleep(100 * time.Millisecond)
		if cp := e.Checkpoint(t); cp != good.Pos {
			t.Fatalf("checkpoint moved to %s past a failed batch (want %s)", cp, good.Pos)
		}
		if _, err := e.model.Image(ctx, later.State.ID); !errors.Is(err, projections.ErrNotFound) {
			t.Fatalf("image of a failed batch is visible: %v", err)
		}
	}
	if _, err := e.pool.Exec(ctx, `ALTER TABLE image_view DROP CONSTRAINT no_poison`); err != nil {
		t.Fatal(err)
	}
	e.WaitFor(t, later.Pos)
	for _, img := range []*projectiontest.Image{poison, later} {
		if _, err := e.model.Image(ctx, img.State.ID); err != nil {
			t.Errorf("image %s after recovery: %v", img.State.ID, err)
		}
	}
}

// TestImageWithDithers reads an image and its first dithers in one
// statement, and agrees with Image and Dithers read apart: with no dither,
// with fewer dithers than the page, with more, and for an unknown image.
func TestImageWithDithers(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.StartProjector(t)
	var all []*projectiontest.Image
	for i, n := range []int{0, 1, 3, 5} {
		all = append(all, e.Upload(t, t0.Add(time.Duration(i)*time.Second), n))
	}
	e.WaitFor(t, projectiontest.LastPos(all...))
	ctx := context.Background()
	for _, img := range all {
		id := img.State.ID
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
			t.Errorf("dithers of an image with %d:\n got %+v\nwant %+v", len(img.State.Dithers), gotPage, wantPage)
		}
	}
	// The checkpoint comes from the same snapshot as the rows.
	if _, _, at, err := e.model.ImageWithDithersAt(ctx, all[0].State.ID, 3); err != nil || at != e.Checkpoint(t) || at == (eventstore.Position{}) {
		t.Errorf("ImageWithDithersAt's checkpoint = %v, %v; want the projection's %v", at, err, e.Checkpoint(t))
	}
	if _, _, err := e.model.ImageWithDithers(ctx, uuid.New(), 3); !errors.Is(err, projections.ErrNotFound) {
		t.Errorf("unknown image: %v, want ErrNotFound", err)
	}
	if _, _, err := e.model.ImageWithDithers(ctx, all[0].State.ID, 0); err == nil {
		t.Error("a page of 0 was accepted")
	}
}
