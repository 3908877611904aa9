package projectiontest

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/imageservice/imageservice/eventstore"
	"github.com/imageservice/imageservice/images"
	"github.com/imageservice/imageservice/internal/testwait"
	"github.com/imageservice/imageservice/projections"
)

// testViewsMatchReplay: the rows equal the fold of each stream by
// images.Replay, for active, deleted and synced images and every dither
// status.
func testViewsMatchReplay(t *testing.T, e *Env) {
	e.StartProjector(t)
	a, b, c := e.Upload(t, t0, 3), e.Upload(t, t0.Add(time.Second), 0), e.Upload(t, t0.Add(2*time.Second), 1)
	e.Apply(t, b)(images.MarkSynced(b.State, images.ImageCloudCopy{SecureURL: "https://cloud.example/b.png", PublicID: "b"}))
	e.Remove(t, c)
	e.WaitFor(t, LastPos(a, b, c))
	ctx := context.Background()
	for _, img := range []*Image{a, b, c} {
		want := e.Replay(t, img.State.ID)
		got, err := e.Model.Image(ctx, img.State.ID)
		if err != nil {
			t.Fatal(err)
		}
		if w := projections.ImageFromState(want); !reflect.DeepEqual(got, w) {
			t.Errorf("image %s:\n got %+v\nwant %+v", img.State.ID, got, w)
		}
		page, err := e.Model.Dithers(ctx, img.State.ID, 100, "")
		if err != nil {
			t.Fatal(err)
		}
		if w := projections.DithersFromState(want); !reflect.DeepEqual(page.Items, w) {
			t.Errorf("dithers of %s:\n got %+v\nwant %+v", img.State.ID, page.Items, w)
		}
		for _, w := range projections.DithersFromState(want) {
			d, err := e.Model.Dither(ctx, w.ID)
			if err != nil || !reflect.DeepEqual(d, w) {
				t.Errorf("Dither(%s) = %+v, %v; want %+v", w.ID, d, err, w)
			}
		}
	}
	checkSpotValues(t, e, a, b, c)
}

// checkSpotValues checks literal values, so that the comparison with
// replay does not rest on the conversion alone.
func checkSpotValues(t *testing.T, e *Env, a, b, c *Image) {
	t.Helper()
	ctx := context.Background()
	img, _ := e.Model.Image(ctx, a.State.ID)
	if img.Filename != "cat.png" || img.Owner != "tester" || img.DitherCount != 3 || img.Version != 7 ||
		img.Status != images.StatusActive || !img.CreatedAt.Equal(t0.Truncate(time.Microsecond)) {
		t.Errorf("image a = %+v", img)
	}
	page, _ := e.Model.Dithers(ctx, a.State.ID, 100, "")
	statuses := []images.DitherStatus{images.DitherStatusCompleted, images.DitherStatusFailed, images.DitherStatusPending}
	for i, d := range page.Items {
		if d.Seq != i+1 || d.Status != statuses[i] || d.Options.Algorithm != "atkinson" || d.Options.Levels != 2+i {
			t.Errorf("dither %d = %+v", i, d)
		}
	}
	if d := page.Items[0]; d.URL != "https://cloud.example/d.png" || d.ResultKey != keyB || d.CompletedAt == nil {
		t.Errorf("completed dither = %+v", d)
	}
	if d := page.Items[1]; d.Error != "too big" || d.CompletedAt == nil {
		t.Errorf("failed dither = %+v", d)
	}
	if img, _ := e.Model.Image(ctx, b.State.ID); img.URL != "https://cloud.example/b.png" {
		t.Errorf("synced image url = %q", img.URL)
	}
	if img, _ := e.Model.Image(ctx, c.State.ID); img.Status != images.StatusDeleted || img.DeletedAt == nil {
		t.Errorf("deleted image = %+v", img)
	}
}

func testNotFound(t *testing.T, e *Env) {
	ctx := context.Background()
	if _, err := e.Model.Image(ctx, uuid.New()); !errors.Is(err, projections.ErrNotFound) {
		t.Errorf("Image(unknown) = %v, want ErrNotFound", err)
	}
	if _, err := e.Model.Dither(ctx, uuid.New()); !errors.Is(err, projections.ErrNotFound) {
		t.Errorf("Dither(unknown) = %v, want ErrNotFound", err)
	}
	page, err := e.Model.Dithers(ctx, uuid.New(), 10, "")
	if err != nil || len(page.Items) != 0 || page.HasNext {
		t.Errorf("Dithers(unknown) = %+v, %v; want an empty page", page, err)
	}
}

// testDeletedImages: Images leaves deleted images out, Image and
// ImagesByID return them.
func testDeletedImages(t *testing.T, e *Env) {
	e.StartProjector(t)
	kept, gone := e.Upload(t, t0, 0), e.Upload(t, t0.Add(time.Second), 0)
	e.Remove(t, gone)
	e.WaitFor(t, LastPos(kept, gone))
	ctx := context.Background()
	page, err := e.Model.Images(ctx, 10, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Items) != 1 || page.Items[0].ID != kept.State.ID {
		t.Errorf("Images = %+v; want only %s", page.Items, kept.State.ID)
	}
	img, err := e.Model.Image(ctx, gone.State.ID)
	if err != nil || img.Status != images.StatusDeleted {
		t.Errorf("Image(deleted) = %+v, %v", img, err)
	}
	byID, err := e.Model.ImagesByID(ctx, append(IDs(kept, gone), uuid.New()))
	if err != nil || len(byID) != 2 || byID[gone.State.ID].Status != images.StatusDeleted {
		t.Errorf("ImagesByID = %+v, %v", byID, err)
	}
}

// testBlobUse: BlobUse counts each image using a blob once, as original
// or as a result, live and deleted apart; a blob is withdrawn once every
// image using it is deleted.
func testBlobUse(t *testing.T, e *Env) {
	e.StartProjector(t)
	// Both use keyA as their original and keyB as a result; b also uses
	// keyA as a result, and still counts once for it.
	a, b := e.Upload(t, t0, 1), e.Upload(t, t0, 1)
	e.Apply(t, b)(images.RequestDither(b.State, images.DitherRequest{DitherID: uuid.New(),
		Options: images.DitherInput{Levels: 2, Algorithm: "ATKINSON"}, Now: t0}))
	e.Apply(t, b)(images.CompleteDither(b.State, images.DitherResult{DitherID: b.State.Dithers[1].ID,
		ResultKey: keyA, ByteSize: 9, Width: 4, Height: 4, Colours: 2, CompletedAt: t0}))
	ctx := context.Background()
	check := func(when, key string, want projections.BlobUse) {
		t.Helper()
		if got, err := e.Model.BlobUse(ctx, key); err != nil || got != want {
			t.Errorf("%s: BlobUse(%.8s) = %+v, %v; want %+v", when, key, got, err, want)
		}
	}
	e.WaitFor(t, LastPos(a, b))
	check("both live", keyA, projections.BlobUse{Live: 2})
	check("both live", keyB, projections.BlobUse{Live: 2})
	check("both live", strings.Repeat("c", 64), projections.BlobUse{})
	check("both live", "", projections.BlobUse{}) // the result key of dithers without one
	e.Remove(t, a)
	e.WaitFor(t, a.Pos)
	check("a deleted", keyA, projections.BlobUse{Live: 1, Deleted: 1})
	e.Remove(t, b)
	e.WaitFor(t, b.Pos)
	check("both deleted", keyB, projections.BlobUse{Deleted: 2})
	if u, _ := e.Model.BlobUse(ctx, keyA); !u.Withdrawn() {
		t.Errorf("BlobUse(keyA) = %+v is not withdrawn once both images are deleted", u)
	}
}

// testImagesPagination pages through images newest first with page sizes
// 1, 2 and 100; two images share a creation time, so the id breaks the tie.
func testImagesPagination(t *testing.T, e *Env) {
	e.StartProjector(t)
	var all []*Image
	for i := range 7 {
		all = append(all, e.Upload(t, t0.Add(time.Duration(i)*time.Second), 0))
	}
	all = append(all, e.Upload(t, t0.Add(3*time.Second), 0))
	e.WaitFor(t, LastPos(all...))
	want := IDs(all...)
	slices.SortFunc(want, func(x, y uuid.UUID) int {
		return compareImages(all, y, x) // newest first
	})
	for _, first := range []int{1, 2, 3, 100} {
		got := pageAll(t, e, first)
		if !slices.Equal(got, want) {
			t.Errorf("first=%d: pages give\n%v\nwant\n%v", first, got, want)
		}
	}
}

// compareImages orders images by creation time, then id.
func compareImages(all []*Image, x, y uuid.UUID) int {
	created := func(id uuid.UUID) time.Time {
		i := slices.IndexFunc(all, func(img *Image) bool { return img.State.ID == id })
		return all[i].State.CreatedAt
	}
	if c := created(x).Compare(created(y)); c != 0 {
		return c
	}
	return strings.Compare(x.String(), y.String())
}

// pageAll follows Images' cursors to the end, checking the page flags.
func pageAll(t *testing.T, e *Env, first int) []uuid.UUID {
	t.Helper()
	var got []uuid.UUID
	var after projections.Cursor
	for pages := 0; ; pages++ {
		page, err := e.Model.Images(context.Background(), first, after)
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Items) > first || len(page.Cursors) != len(page.Items) || page.HasPrevious != (pages > 0) {
			t.Fatalf("first=%d page %d: %d items, %d cursors, HasPrevious %v",
				first, pages, len(page.Items), len(page.Cursors), page.HasPrevious)
		}
		for _, img := range page.Items {
			got = append(got, img.ID)
		}
		if !page.HasNext {
			return got
		}
		after = page.EndCursor()
	}
}

func testPageArgumentsRejected(t *testing.T, e *Env) {
	ctx := context.Background()
	for _, first := range []int{0, -1, 101} {
		if _, err := e.Model.Images(ctx, first, ""); !errors.Is(err, projections.ErrInvalidPage) {
			t.Errorf("Images(first=%d) = %v, want ErrInvalidPage", first, err)
		}
		if _, err := e.Model.Dithers(ctx, uuid.New(), first, ""); !errors.Is(err, projections.ErrInvalidPage) {
			t.Errorf("Dithers(first=%d) = %v, want ErrInvalidPage", first, err)
		}
		if _, err := e.Model.DithersByImage(ctx, []uuid.UUID{uuid.New()}, first); !errors.Is(err, projections.ErrInvalidPage) {
			t.Errorf("DithersByImage(first=%d) = %v, want ErrInvalidPage", first, err)
		}
	}
	for _, c := range []projections.Cursor{"garbage!", "Zm9v", projections.NewDitherCursor(3)} {
		if _, err := e.Model.Images(ctx, 10, c); !errors.Is(err, projections.ErrInvalidCursor) {
			t.Errorf("Images(after=%q) = %v, want ErrInvalidCursor", c, err)
		}
	}
	imageCursor := projections.NewImageCursor(time.Now(), uuid.New())
	for _, c := range []projections.Cursor{"garbage!", imageCursor} {
		if _, err := e.Model.Dithers(ctx, uuid.New(), 10, c); !errors.Is(err, projections.ErrInvalidCursor) {
			t.Errorf("Dithers(after=%q) = %v, want ErrInvalidCursor", c, err)
		}
	}
}

func testDithersPagination(t *testing.T, e *Env) {
	e.StartProjector(t)
	img := e.Upload(t, t0, 5)
	e.WaitFor(t, img.Pos)
	want := projections.DithersFromState(e.Replay(t, img.State.ID))
	ctx := context.Background()
	var got []projections.Dither
	var after projections.Cursor
	for {
		page, err := e.Model.Dithers(ctx, img.State.ID, 2, after)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, page.Items...)
		if !page.HasNext {
			break
		}
		after = page.EndCursor()
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("dither pages give\n%+v\nwant\n%+v", got, want)
	}
}

// testDithersByImage loads the first dithers of 20 images (and an
// unknown one) at once.
func testDithersByImage(t *testing.T, e *Env) {
	e.StartProjector(t)
	var all []*Image
	for i := range 20 {
		all = append(all, e.Upload(t, t0.Add(time.Duration(i)*time.Second), i%5))
	}
	e.WaitFor(t, LastPos(all...))
	unknown := uuid.New()
	ctx := context.Background()
	pages, err := e.Model.DithersByImage(ctx, append(IDs(all...), unknown), 2)
	if err != nil {
		t.Fatal(err)
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
	if imgs, err := e.Model.ImagesByID(ctx, IDs(all...)); err != nil || len(imgs) != 20 {
		t.Errorf("ImagesByID: %d images, %v", len(imgs), err)
	}
}

// testWaitFor: WaitFor blocks until the projection has the position, and
// gives up with ctx.
func testWaitFor(t *testing.T, e *Env) {
	img := e.Upload(t, t0, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := e.Model.WaitFor(ctx, img.Pos); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitFor without a projector = %v, want DeadlineExceeded", err)
	}
	e.StartProjector(t)
	e.WaitFor(t, img.Pos)
	if _, err := e.Model.Image(context.Background(), img.State.ID); err != nil {
		t.Errorf("image not readable after WaitFor: %v", err)
	}
	e.WaitFor(t, eventstore.Position{}) // the zero position is always reached
}

// testProjectorResumes: a projector stopped and started again carries on
// from its checkpoint and applies every event exactly once.
func testProjectorResumes(t *testing.T, e *Env) {
	stop := e.StartProjector(t)
	a := e.Upload(t, t0, 1)
	e.WaitFor(t, a.Pos)
	stop()
	stopped := a.Pos
	e.Apply(t, a)(images.RequestDither(a.State, images.DitherRequest{DitherID: uuid.New(), Now: t0}))
	b := e.Upload(t, t0.Add(time.Second), 2)
	if cp := e.Checkpoint(t); cp != stopped {
		t.Fatalf("checkpoint after stop = %s, want %s", cp, stopped)
	}
	e.StartProjector(t)
	e.WaitFor(t, LastPos(a, b))
	if cp := e.Checkpoint(t); cp != LastPos(a, b) {
		t.Errorf("checkpoint = %s, want %s", cp, LastPos(a, b))
	}
	want := []*Image{a, b}
	got := e.Snapshot(t, IDs(want...))
	for _, img := range want {
		r := e.Replay(t, img.State.ID)
		if g := got.images[img.State.ID]; !reflect.DeepEqual(g, projections.ImageFromState(r)) {
			t.Errorf("image %s = %+v, want %+v", img.State.ID, g, projections.ImageFromState(r))
		}
		if g := got.dithers[img.State.ID].Items; !reflect.DeepEqual(g, projections.DithersFromState(r)) {
			t.Errorf("dithers of %s = %+v", img.State.ID, g)
		}
	}
}

// testSkipsForeignAndBadEvents: events of other streams are ignored,
// malformed events are logged and skipped, and the events after them are
// still applied.
func testSkipsForeignAndBadEvents(t *testing.T, e *Env) {
	e.StartProjector(t)
	ctx := context.Background()
	img := e.Upload(t, t0, 0)
	stream := images.StreamID(img.State.ID)
	mustAppend(t, e, "order-1", eventstore.Any, rawEvent("OrderPlaced", 1, `{}`))
	mustAppend(t, e, "image-not-a-uuid", eventstore.Any, rawEvent(images.TypeImageDeleted, 1, `{}`))
	mustAppend(t, e, stream, eventstore.Exact(1), rawEvent(images.TypeDitherRequested, 2, `{"dither_id": 5}`))
	img.State.Version = 2
	e.Apply(t, img)(images.MarkSynced(img.State, images.ImageCloudCopy{SecureURL: "https://cloud.example/x.png", PublicID: "x"}))
	e.WaitFor(t, img.Pos)
	got, err := e.Model.Image(ctx, img.State.ID)
	if err != nil || got.URL != "https://cloud.example/x.png" || got.Version != 3 || got.DitherCount != 0 {
		t.Errorf("image after bad events = %+v, %v", got, err)
	}
	logs := e.logs.String()
	for _, want := range []string{"malformed event skipped", "image-not-a-uuid"} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %q:\n%s", want, logs)
		}
	}
	if strings.Contains(logs, "order-1") {
		t.Errorf("events of other streams should be ignored silently:\n%s", logs)
	}
}

// testStopsAtUnreadableEvents: an event of a type or schema version this
// build does not know (a newer build wrote it) fails its batch, with
// nothing of the batch applied and the checkpoint where it was, and fails
// a rebuild, rather than being skipped for good.
func testStopsAtUnreadableEvents(t *testing.T, e *Env) {
	for _, c := range []struct {
		name string
		ev   eventstore.NewEvent
		want error
	}{
		{"unknown type", rawEvent("ImageRotated", 1, `{"degrees": 90}`), images.ErrUnknownEventType},
		{"newer schema version", rawEvent(images.TypeImageDeleted, images.ImageDeletedVersion+1, `{}`), images.ErrUnknownSchemaVersion},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			sub := e.Model.Projector()
			key := eventstore.CheckpointKey{Subscription: sub.Name}
			before, err := e.Store.Checkpoint(ctx, key)
			if err != nil {
				t.Fatal(err)
			}
			from, _, err := e.Store.Head(ctx)
			if err != nil {
				t.Fatal(err)
			}
			other := e.Upload(t, t0, 0)
			img := e.Upload(t, t0, 0)
			mustAppend(t, e, images.StreamID(img.State.ID), eventstore.Exact(1), c.ev)
			var events []eventstore.Event
			testwait.Until(t, 20*time.Second, "the three events to be readable", func() bool {
				events, err = e.Store.ReadAll(ctx, from, 100)
				return err != nil || len(events) >= 3
			})
			if err != nil || len(events) != 3 {
				t.Fatalf("read the batch: %d events, %v", len(events), err)
			}
			err = sub.Handler(ctx, eventstore.Batch{Events: events,
				Checkpoint: eventstore.Checkpoint{Key: key, Position: events[len(events)-1].Position}})
			if !errors.Is(err, images.ErrUnreadable) || !errors.Is(err, c.want) {
				t.Fatalf("handle the batch: %v, want ErrUnreadable and %v", err, c.want)
			}
			if cp, err := e.Store.Checkpoint(ctx, key); err != nil || cp != before {
				t.Errorf("checkpoint after the failed batch = %s, %v; want %s", cp, err, before)
			}
			for _, id := range []uuid.UUID{other.State.ID, img.State.ID} {
				if got, err := e.Model.Image(ctx, id); !errors.Is(err, projections.ErrNotFound) {
					t.Errorf("image of the failed batch = %+v, %v; want ErrNotFound", got, err)
				}
			}
			if e.Rebuild != nil {
				if err := e.Rebuild(ctx, nil); !errors.Is(err, images.ErrUnreadable) {
					t.Errorf("rebuild: %v, want ErrUnreadable", err)
				}
			}
		})
	}
}

func rawEvent(typ string, v int, data string) eventstore.NewEvent {
	return eventstore.NewEvent{ID: eventstore.NewEventID(), Type: typ, SchemaVersion: v, Data: []byte(data)}
}

func mustAppend(t *testing.T, e *Env, stream string, v eventstore.ExpectedVersion, evs ...eventstore.NewEvent) {
	t.Helper()
	if _, err := e.Store.Append(context.Background(), stream, v, evs...); err != nil {
		t.Fatal(err)
	}
}
