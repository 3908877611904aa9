package images_test

import (
	"testing"
	"time"

	"github.com/imageservice/imageservice/images"
)

func TestEvolveLifecycle(t *testing.T) {
	s := build(t, uploaded, requested(ditherID), requested(otherID), completed(ditherID), failed(otherID))
	if s.ID != imageID || s.Status != images.StatusActive || s.Filename != "cat.png" || s.Version != 5 {
		t.Fatalf("image state %+v", s)
	}
	if s.CreatedAt != t0 || s.SHA256 != keyA || s.Width != 64 || s.Height != 48 || s.ByteSize != 1234 {
		t.Fatalf("image fields %+v", s)
	}
	if len(s.Dithers) != 2 || s.Dithers[0].ID != ditherID || s.Dithers[1].ID != otherID {
		t.Fatalf("dithers not in request order: %+v", s.Dithers)
	}
	d := s.Dithers[0]
	if d.Status != images.DitherStatusCompleted || d.ResultKey != keyB || d.Colours != 8 || d.DurationMs != 12 ||
		d.CompletedAt != t0.Add(time.Second) || d.Options.Algorithm != "floyd-steinberg" {
		t.Fatalf("completed dither %+v", d)
	}
	f := s.Dithers[1]
	if f.Status != images.DitherStatusFailed || f.Error != "image could not be decoded" || f.CompletedAt != t0 {
		t.Fatalf("failed dither %+v", f)
	}
}

func TestEvolveSyncAndDelete(t *testing.T) {
	s := build(t, uploaded, requested(ditherID), completed(ditherID))
	s = images.Evolve(s, images.ImageSynced{SecureURL: "https://x/a", PublicID: "a"}, images.EventMeta{StreamVersion: 4})
	s = images.Evolve(s, images.DitherSynced{DitherID: ditherID, SecureURL: "https://x/d", PublicID: "d"}, images.EventMeta{StreamVersion: 5})
	if s.URL != "https://x/a" || s.PublicID != "a" || s.Dithers[0].URL != "https://x/d" || s.Dithers[0].PublicID != "d" {
		t.Fatalf("sync state %+v", s)
	}
	rec := t0.Add(time.Hour)
	s = images.Evolve(s, images.ImageDeleted{}, images.EventMeta{StreamVersion: 6, RecordedAt: rec})
	if !s.Deleted() || s.DeletedAt != rec || s.Version != 6 || s.UpdatedAt != rec {
		t.Fatalf("deleted state %+v", s)
	}
}

func TestEvolveDoesNotModifyInput(t *testing.T) {
	before := build(t, uploaded, requested(ditherID))
	after := images.Evolve(before, images.DitherCompleted{DitherID: ditherID, ResultKey: keyB}, images.EventMeta{StreamVersion: 3})
	if before.Dithers[0].Status != images.DitherStatusPending || before.Version != 2 {
		t.Fatalf("input state changed: %+v", before.Dithers[0])
	}
	if after.Dithers[0].Status != images.DitherStatusCompleted {
		t.Fatalf("output not changed: %+v", after.Dithers[0])
	}
	// Appending to two states derived from the same one must not share memory.
	a := images.Evolve(before, images.DitherRequested{DitherID: otherID}, images.EventMeta{})
	b := images.Evolve(before, images.DitherRequested{DitherID: keyDither("c")}, images.EventMeta{})
	if a.Dithers[1].ID != otherID || len(before.Dithers) != 1 || b.Dithers[1].ID == otherID {
		t.Fatal("states share dither memory")
	}
}

func TestEvolveEdgeCases(t *testing.T) {
	s := build(t, uploaded)
	// An outcome for an unknown dither changes only the version.
	s2 := images.Evolve(s, images.DitherCompleted{DitherID: otherID}, images.EventMeta{})
	if len(s2.Dithers) != 0 || s2.Version != s.Version+1 {
		t.Fatalf("unexpected state %+v", s2)
	}
	// A duplicate request is ignored.
	s3 := images.Evolve(images.Evolve(s, images.DitherRequested{DitherID: ditherID}, images.EventMeta{}),
		images.DitherRequested{DitherID: ditherID}, images.EventMeta{})
	if len(s3.Dithers) != 1 {
		t.Fatalf("duplicate request folded twice: %+v", s3.Dithers)
	}
	// Pointers work like values; nil and foreign events are ignored.
	s4 := images.Evolve(images.Image{}, &images.ImageUploaded{ImageID: imageID}, images.EventMeta{RecordedAt: t0})
	s4 = images.Evolve(s4, (*images.ImageDeleted)(nil), images.EventMeta{})
	s4 = images.Evolve(s4, nil, images.EventMeta{})
	if s4.ID != imageID || s4.CreatedAt != t0 || s4.Deleted() || s4.Version != 3 {
		t.Fatalf("pointer/nil events: %+v", s4)
	}
	// Zero times fall back to the recorded time.
	s5 := images.Evolve(s, images.DitherRequested{DitherID: ditherID}, images.EventMeta{RecordedAt: t0.Add(time.Minute)})
	if s5.Dithers[0].RequestedAt != t0.Add(time.Minute) {
		t.Fatalf("requested at %v", s5.Dithers[0].RequestedAt)
	}
}

func TestReplay(t *testing.T) {
	up, _ := images.Upload(uploadCmd())
	var recs []images.Recorded
	for i, e := range append(up,
		images.DitherRequested{DitherID: ditherID, DitherOptions: images.DitherOptions{Levels: 4}},
		images.ImageDeleted{DeletedAt: t0}) {
		recs = append(recs, images.Recorded{Event: e, Meta: images.EventMeta{StreamVersion: int64(i + 1), RecordedAt: t0}})
	}
	s := images.Replay(recs...)
	if s.Version != 3 || !s.Deleted() || len(s.Dithers) != 1 || s.Dithers[0].Options.Levels != 4 {
		t.Fatalf("replayed %+v", s)
	}
	// Replaying a prefix gives the image as it was at that version (imageAt).
	if at := images.Replay(recs[:2]...); at.Version != 2 || at.Deleted() {
		t.Fatalf("prefix replay %+v", at)
	}
	if images.Replay().Exists() {
		t.Fatal("empty replay exists")
	}
}

func TestImageDither(t *testing.T) {
	s := build(t, uploaded, requested(ditherID))
	if d, ok := s.Dither(ditherID); !ok || d.Status != images.DitherStatusPending {
		t.Fatalf("Dither(%v) = %+v, %v", ditherID, d, ok)
	}
	if _, ok := s.Dither(otherID); ok {
		t.Fatal("found unknown dither")
	}
}
