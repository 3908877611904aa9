package commands

import (
	"bytes"
	"context"
	"image"
	"image/jpeg"
	"image/png"
	"testing"
	"time"

	"github.com/imageservice/imageservice/internal/testexif"
	"github.com/imageservice/imageservice/internal/teststores"
	"github.com/imageservice/imageservice/internal/testwait"
)

// Uploads are decoded within the decode budget: one that would exceed it
// waits until the pixels are given back, and one whose client gives up
// while waiting ends with the client's error.
func TestUploadsWaitForTheDecodeBudget(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	lite := teststores.NewSQLite(t)
	s := New(SQLite{Store: lite.Store, Blobs: lite.Blobs}, Options{DecodeBudget: 100})
	var file bytes.Buffer
	if err := png.Encode(&file, image.NewGray(image.Rect(0, 0, 8, 8))); err != nil { // 64 pixels
		t.Fatal(err)
	}
	upload := func(ctx context.Context) error {
		_, err := s.Upload(ctx, UploadInput{Body: bytes.NewReader(file.Bytes()), Filename: "a.png"})
		return err
	}
	if err := upload(ctx); err != nil {
		t.Fatalf("an upload within the budget: %v", err)
	}

	// Another upload holds 64 of the 100 pixels: this one must wait.
	if err := s.decoding.Acquire(ctx, 64); err != nil {
		t.Fatal(err)
	}
	short, stop := context.WithTimeout(ctx, 200*time.Millisecond)
	defer stop()
	if err := upload(short); err == nil {
		t.Fatal("an upload went past the decode budget")
	}
	done := make(chan error, 1)
	go func() { done <- upload(ctx) }()
	s.decoding.Release(64)
	if err := <-done; err != nil {
		t.Fatalf("the waiting upload, once the pixels were given back: %v", err)
	}
}

// An upload reserves of the decode budget what decoding it holds at its
// peak: an 8x8 image (64 pixels) that a quarter turn copies reserves 128,
// as does a JPEG, which any turn converts; one mirrored or turned half-way
// in place, or not turned, reserves 64. With exactly its reservation free
// an upload goes through; with one pixel fewer it waits its turn.
func TestTurnedUploadsReserveWhatTheyHold(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	lite := teststores.NewSQLite(t)
	const budget = 1000
	s := New(SQLite{Store: lite.Store, Blobs: lite.Blobs}, Options{DecodeBudget: budget})
	var gray, colour bytes.Buffer
	if err := png.Encode(&gray, image.NewGray(image.Rect(0, 0, 8, 8))); err != nil {
		t.Fatal(err)
	}
	if err := jpeg.Encode(&colour, image.NewRGBA(image.Rect(0, 0, 8, 8)), nil); err != nil { // YCbCr
		t.Fatal(err)
	}
	for _, c := range []struct {
		name    string
		file    []byte
		reserve int64
	}{
		{"png turned a quarter (6)", testexif.PNG(gray.Bytes(), 6), 128},
		{"png transposed (5)", testexif.PNG(gray.Bytes(), 5), 128},
		{"png turned half-way (3)", testexif.PNG(gray.Bytes(), 3), 64},
		{"png mirrored (2)", testexif.PNG(gray.Bytes(), 2), 64},
		{"png upright", gray.Bytes(), 64},
		{"jpeg turned a quarter (8)", testexif.JPEG(colour.Bytes(), 8), 128},
		{"jpeg mirrored (4)", testexif.JPEG(colour.Bytes(), 4), 128},
		{"jpeg upright", colour.Bytes(), 64},
	} {
		upload := func() error {
			_, err := s.Upload(ctx, UploadInput{Body: bytes.NewReader(c.file), Filename: "a"})
			return err
		}
		testwait.Reserves(t, s.decoding, budget, c.reserve, c.name, upload)
	}
}
