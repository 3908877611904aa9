package commands

import (
	"bytes"
	"context"
	"image"
	"image/png"
	"testing"
	"time"

	"github.com/imageservice/imageservice/internal/teststores"
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
