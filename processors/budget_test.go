package processors_test

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/png"
	"log/slog"
	"testing"
	"time"

	"golang.org/x/sync/semaphore"

	"github.com/imageservice/imageservice/commands"
	"github.com/imageservice/imageservice/images"
	"github.com/imageservice/imageservice/internal/testexif"
	"github.com/imageservice/imageservice/internal/teststores"
	"github.com/imageservice/imageservice/internal/testwait"
	"github.com/imageservice/imageservice/processors"
)

// A dither reserves of the budget what decoding its original holds at its
// peak: an 8x8 image (64 pixels) that a quarter turn copies reserves 128;
// one mirrored in place, or not turned, reserves 64. With exactly its
// reservation free a dither completes; with one pixel fewer it waits its
// turn.
func TestTurnedDithersReserveWhatTheyHold(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	lite := teststores.NewSQLite(t)
	cmds := commands.New(commands.SQLite{Store: lite.Store, Blobs: lite.Blobs}, commands.Options{AutoDither: true})
	const budget = 1000
	sem := semaphore.NewWeighted(budget)
	w := &processors.DitherWorker{Commands: cmds, Blobs: lite.Blobs, Budget: sem, BudgetPixels: budget,
		Logger: slog.New(slog.DiscardHandler)}
	var gray bytes.Buffer
	if err := png.Encode(&gray, image.NewGray(image.Rect(0, 0, 8, 8))); err != nil {
		t.Fatal(err)
	}
	// dither uploads file, which requests a dither, and processes it.
	dither := func(file []byte) error {
		res, err := cmds.Upload(ctx, commands.UploadInput{Body: bytes.NewReader(file), Filename: "a.png"})
		if err != nil {
			return err
		}
		a := processors.DitherArgs{ImageID: res.Image.ID, DitherID: res.Image.Dithers[0].ID}
		if err := w.Process(ctx, a, false); err != nil {
			return err
		}
		img, err := cmds.Load(ctx, a.ImageID)
		if err != nil {
			return err
		}
		if d := img.Dithers[0]; d.Status != images.DitherStatusCompleted {
			return fmt.Errorf("dither %s: %s", d.Status, d.Error)
		}
		return nil
	}
	for _, c := range []struct {
		name    string
		file    []byte
		reserve int64
	}{
		{"turned a quarter (6)", testexif.PNG(gray.Bytes(), 6), 128},
		{"transversed (7)", testexif.PNG(gray.Bytes(), 7), 128},
		{"mirrored (4)", testexif.PNG(gray.Bytes(), 4), 64},
		{"upright", gray.Bytes(), 64},
	} {
		testwait.Reserves(t, sem, budget, c.reserve, c.name, func() error { return dither(c.file) })
	}
}
