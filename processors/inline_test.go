package processors_test

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/png"
	"testing"
	"time"

	"github.com/google/uuid"

	blobpg "github.com/imageservice/imageservice/blobstore/postgres"
	"github.com/imageservice/imageservice/commands"
	"github.com/imageservice/imageservice/eventstore"
	espg "github.com/imageservice/imageservice/eventstore/postgres"
	"github.com/imageservice/imageservice/images"
	"github.com/imageservice/imageservice/internal/teststores"
	"github.com/imageservice/imageservice/processors"
)

func testPNG(t *testing.T) []byte {
	img := image.NewNRGBA(image.Rect(0, 0, 40, 30))
	for y := range 30 {
		for x := range 40 {
			img.Set(x, y, color.NRGBA{uint8(x * 6), uint8(y * 8), 90, 255})
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// The inline processor (the embedded default's) records exactly one
// outcome per request, also when it is restarted in between, and a
// corrupt original ends in DitherFailed with a reason.
func TestInlineProcessor(t *testing.T) {
	pg := teststores.NewPostgres(t, espg.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	store, blobs := pg.Store, pg.Blobs
	cmds := commands.New(commands.Postgres{Store: store, Blobs: blobs}, commands.Options{AutoDither: true})
	ids := []uuid.UUID{corruptUpload(t, ctx, store, blobs)}
	for range 3 {
		res, err := cmds.Upload(ctx, commands.UploadInput{Body: bytes.NewReader(testPNG(t)), Filename: "a.png"})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, res.Image.ID)
	}
	run := func(d time.Duration) {
		c, stop := context.WithCancel(ctx)
		p := processors.NewInline(store, cmds, blobs, processors.Config{Concurrency: 2})
		done := make(chan struct{})
		go func() { defer close(done); _ = p.Run(c, &eventstore.Runner{Store: store}) }()
		if d > 0 {
			time.Sleep(d)
		} else {
			deadline := time.Now().Add(time.Minute)
			for !allDecided(t, cmds, ids) {
				if time.Now().After(deadline) {
					t.Fatal("dithers not decided within a minute")
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
		stop()
		<-done
	}
	run(5 * time.Millisecond) // stopped early, perhaps mid-work
	run(0)
	corrupt, err := cmds.Load(ctx, ids[0])
	if err != nil || corrupt.Dithers[0].Status != images.DitherStatusFailed || corrupt.Dithers[0].Error == "" {
		t.Fatalf("corrupt original: %+v, %v", corrupt.Dithers, err)
	}
	t.Logf("corrupt original: %s", corrupt.Dithers[0].Error)
	for _, id := range ids[1:] {
		img, err := cmds.Load(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		events, _ := cmds.History(ctx, id, 0, 100)
		outcomes := 0
		for _, e := range events {
			if e.Type == images.TypeDitherCompleted || e.Type == images.TypeDitherFailed {
				outcomes++
			}
		}
		if outcomes != 1 || img.Dithers[0].Status != images.DitherStatusCompleted || img.Dithers[0].Colours > 8 {
			t.Fatalf("image %s: %d outcomes, dither %+v", id, outcomes, img.Dithers[0])
		}
	}
}

func allDecided(t *testing.T, cmds *commands.Service, ids []uuid.UUID) bool {
	for _, id := range ids {
		img, err := cmds.Load(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range img.Dithers {
			if d.Status == images.DitherStatusPending {
				return false
			}
		}
	}
	return true
}

// corruptUpload records an upload whose stored original is not an image,
// as a damaged blob store would hand it over.
func corruptUpload(t *testing.T, ctx context.Context, store *espg.Store, blobs *blobpg.Store) uuid.UUID {
	blob, err := blobs.Put(ctx, "image/png", bytes.NewReader([]byte("\x89PNG\r\n\x1a\n but nothing more")))
	if err != nil {
		t.Fatal(err)
	}
	id := uuid.New()
	evs, err := images.Upload(images.UploadImage{
		ImageID: id, Filename: "bad.png", ContentType: "image/png", ByteSize: blob.Size, Width: 4, Height: 4,
		SHA256: blob.Key, Dither: &images.DitherInput{}, DitherID: uuid.New(),
	})
	if err != nil {
		t.Fatal(err)
	}
	var events []eventstore.NewEvent
	for _, e := range evs {
		typ, v, data, err := images.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		events = append(events, eventstore.NewEvent{ID: eventstore.NewEventID(), Type: typ, SchemaVersion: v, Data: data})
	}
	if _, err := store.Append(ctx, images.StreamID(id), eventstore.NoStream, events...); err != nil {
		t.Fatal(err)
	}
	return id
}
