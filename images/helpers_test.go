package images_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/imageservice/imageservice/images"
)

var (
	t0       = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	imageID  = uuid.MustParse("0193a0a0-0000-7000-8000-000000000001")
	ditherID = uuid.MustParse("0193a0a0-0000-7000-8000-0000000000d1")
	otherID  = uuid.MustParse("0193a0a0-0000-7000-8000-0000000000d2")
	keyA     = strings.Repeat("a", 64)
	keyB     = strings.Repeat("b", 64)
)

func ptr[T any](v T) *T { return &v }

func uploadCmd() images.UploadImage {
	return images.UploadImage{
		ImageID: imageID, Filename: "cat.png", ContentType: "image/png",
		ByteSize: 1234, Width: 64, Height: 48, SHA256: keyA, Now: t0,
	}
}

// build decides and folds a sequence of steps, failing the test on any error.
func build(t *testing.T, steps ...func(images.Image) ([]images.Event, error)) images.Image {
	t.Helper()
	var s images.Image
	for i, step := range steps {
		evs, err := step(s)
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		for _, e := range evs {
			s = images.Evolve(s, e, images.EventMeta{StreamVersion: s.Version + 1, RecordedAt: t0})
		}
	}
	return s
}

func uploaded(images.Image) ([]images.Event, error) { return images.Upload(uploadCmd()) }

func requested(id uuid.UUID) func(images.Image) ([]images.Event, error) {
	return func(s images.Image) ([]images.Event, error) {
		return images.RequestDither(s, images.DitherRequest{DitherID: id, Now: t0})
	}
}

func completed(id uuid.UUID) func(images.Image) ([]images.Event, error) {
	return func(s images.Image) ([]images.Event, error) {
		return images.CompleteDither(s, resultCmd(id))
	}
}

func failed(id uuid.UUID) func(images.Image) ([]images.Event, error) {
	return func(s images.Image) ([]images.Event, error) {
		return images.FailDither(s, images.DitherFailure{DitherID: id, Reason: "image could not be decoded", CompletedAt: t0})
	}
}

func deleted(s images.Image) ([]images.Event, error) {
	return images.Delete(s, images.DeleteImage{Now: t0})
}

func resultCmd(id uuid.UUID) images.DitherResult {
	return images.DitherResult{DitherID: id, ResultKey: keyB, ByteSize: 99, Width: 64, Height: 48,
		Colours: 8, DurationMs: 12, CompletedAt: t0.Add(time.Second)}
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if code == "" {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	if got := images.CodeOf(err); got != code {
		t.Fatalf("error = %v (code %q), want code %q", err, got, code)
	}
}

func asError(err error, target **images.Error) bool { return errors.As(err, target) }

// keyDither returns a dither id made of one repeated hex digit.
func keyDither(hex string) uuid.UUID {
	return uuid.MustParse(strings.Repeat(hex, 8) + "-" + strings.Repeat(hex, 4) + "-" + strings.Repeat(hex, 4) + "-" + strings.Repeat(hex, 4) + "-" + strings.Repeat(hex, 12))
}
