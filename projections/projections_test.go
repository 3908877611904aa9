package projections_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/imageservice/imageservice/images"
	"github.com/imageservice/imageservice/projections"
)

func TestImageCursorRoundTrip(t *testing.T) {
	at := time.Date(2025, 3, 4, 5, 6, 7, 123456789, time.UTC)
	id := uuid.New()
	c := projections.NewImageCursor(at, id)
	parsed, err := projections.ParseCursor(string(c))
	if err != nil || parsed != c {
		t.Fatalf("ParseCursor(%q) = %q, %v", c, parsed, err)
	}
	gotAt, gotID, err := parsed.ImageKey()
	if err != nil {
		t.Fatal(err)
	}
	if !gotAt.Equal(at.Truncate(time.Microsecond)) || gotID != id {
		t.Errorf("ImageKey = %v, %v; want %v, %v", gotAt, gotID, at, id)
	}
	if _, err := parsed.DitherKey(); !errors.Is(err, projections.ErrInvalidCursor) {
		t.Errorf("DitherKey of an image cursor: %v, want ErrInvalidCursor", err)
	}
}

func TestDitherCursorRoundTrip(t *testing.T) {
	c := projections.NewDitherCursor(42)
	parsed, err := projections.ParseCursor(string(c))
	if err != nil {
		t.Fatal(err)
	}
	seq, err := parsed.DitherKey()
	if err != nil || seq != 42 {
		t.Errorf("DitherKey = %d, %v; want 42", seq, err)
	}
	if _, _, err := parsed.ImageKey(); !errors.Is(err, projections.ErrInvalidCursor) {
		t.Errorf("ImageKey of a dither cursor: %v, want ErrInvalidCursor", err)
	}
}

func TestParseCursorRejectsGarbage(t *testing.T) {
	b64 := func(s string) string { return string(projections.Cursor(encode(s))) }
	for _, s := range []string{
		"", "!!!", "not-a-cursor", strings.Repeat("A", 300),
		b64("img|12"), b64("img|x|" + uuid.NewString()), b64("img|1|not-a-uuid"),
		b64("dth|0"), b64("dth|-3"), b64("dth|1|2"), b64("xyz|1"),
	} {
		if _, err := projections.ParseCursor(s); !errors.Is(err, projections.ErrInvalidCursor) {
			t.Errorf("ParseCursor(%q) = %v, want ErrInvalidCursor", s, err)
		}
	}
}

func TestCheckPageSize(t *testing.T) {
	for _, n := range []int{1, 2, 100} {
		if err := projections.CheckPageSize(n); err != nil {
			t.Errorf("CheckPageSize(%d) = %v", n, err)
		}
	}
	for _, n := range []int{-1, 0, 101} {
		if err := projections.CheckPageSize(n); !errors.Is(err, projections.ErrInvalidPage) {
			t.Errorf("CheckPageSize(%d) = %v, want ErrInvalidPage", n, err)
		}
	}
}

func TestFromState(t *testing.T) {
	at := time.Date(2025, 1, 2, 3, 4, 5, 999, time.FixedZone("x", 3600))
	imageID, ditherID := uuid.New(), uuid.New()
	var s images.Image
	evs, err := images.Upload(images.UploadImage{ImageID: imageID, Filename: "a.png", ContentType: "image/png",
		ByteSize: 10, Width: 2, Height: 3, SHA256: strings.Repeat("c", 64), Now: at,
		Dither: &images.DitherInput{Levels: 4}, DitherID: ditherID})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		s = images.Evolve(s, e, images.EventMeta{RecordedAt: at})
	}
	img := projections.ImageFromState(s)
	if img.ID != imageID || img.DitherCount != 1 || img.DeletedAt != nil || img.Version != 2 ||
		img.CreatedAt.Location() != time.UTC || img.CreatedAt.Nanosecond() != 0 {
		t.Errorf("ImageFromState = %+v", img)
	}
	ds := projections.DithersFromState(s)
	if len(ds) != 1 || ds[0].ID != ditherID || ds[0].Seq != 1 || ds[0].ImageID != imageID ||
		ds[0].Status != images.DitherStatusPending || ds[0].CompletedAt != nil || ds[0].Options.Levels != 4 {
		t.Errorf("DithersFromState = %+v", ds)
	}
}

func TestProgressBar(t *testing.T) {
	var buf bytes.Buffer
	bar := projections.ProgressBar(&buf)
	bar(0, 10, 0)
	bar(5, 10, 100)
	bar(10, 10, 250)
	bar(10, 10, 250) // ignored once finished
	out := buf.String()
	if !strings.Contains(out, " 50% 5/10") || !strings.Contains(out, "100% 10/10") {
		t.Errorf("bar output %q lacks the steps", out)
	}
	if strings.Count(out, "10 events replayed at 250 events/s\n") != 1 {
		t.Errorf("bar output %q: want one final line", out)
	}
}

func encode(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
