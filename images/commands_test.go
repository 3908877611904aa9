package images_test

import (
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/imageservice/imageservice/images"
)

func TestUpload(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*images.UploadImage)
		code   string
		events int
	}{
		{name: "ok", mutate: func(*images.UploadImage) {}, events: 1},
		{name: "with dither", mutate: func(c *images.UploadImage) {
			c.Dither, c.DitherID = &images.DitherInput{Levels: 4}, ditherID
		}, events: 2},
		{name: "dither without id", mutate: func(c *images.UploadImage) { c.Dither = &images.DitherInput{} }, code: images.CodeInvalidInput},
		{name: "dither bad levels", mutate: func(c *images.UploadImage) {
			c.Dither, c.DitherID = &images.DitherInput{Levels: 300}, ditherID
		}, code: images.CodeInvalidLevels},
		{name: "no id", mutate: func(c *images.UploadImage) { c.ImageID = uuid.Nil }, code: images.CodeInvalidInput},
		{name: "svg", mutate: func(c *images.UploadImage) { c.ContentType = "image/svg+xml" }, code: images.CodeUnsupportedContentType},
		{name: "empty", mutate: func(c *images.UploadImage) { c.ByteSize = 0 }, code: images.CodeInvalidInput},
		{name: "no pixels", mutate: func(c *images.UploadImage) { c.Width = 0 }, code: images.CodeInvalidInput},
		{name: "bad key", mutate: func(c *images.UploadImage) { c.SHA256 = "ABC" }, code: images.CodeInvalidInput},
		{name: "upper-case key", mutate: func(c *images.UploadImage) { c.SHA256 = "A" + keyA[1:] }, code: images.CodeInvalidInput},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := uploadCmd()
			tt.mutate(&cmd)
			evs, err := images.Upload(cmd)
			wantCode(t, err, tt.code)
			if len(evs) != tt.events {
				t.Fatalf("got %d events, want %d", len(evs), tt.events)
			}
		})
	}
}

func TestUploadCleansFilename(t *testing.T) {
	cmd := uploadCmd()
	cmd.Filename = "../../etc/passwd\x00.png"
	evs, err := images.Upload(cmd)
	if err != nil {
		t.Fatal(err)
	}
	if got := evs[0].(images.ImageUploaded).Filename; got != "passwd.png" {
		t.Fatalf("filename = %q", got)
	}
}

func TestRequestDither(t *testing.T) {
	tests := []struct {
		name   string
		state  images.Image
		cmd    images.DitherRequest
		code   string
		events int
	}{
		{name: "ok", state: build(t, uploaded), cmd: images.DitherRequest{DitherID: ditherID, Options: images.DitherInput{Levels: 8}}, events: 1},
		{name: "second dither", state: build(t, uploaded, requested(ditherID)), cmd: images.DitherRequest{DitherID: otherID}, events: 1},
		{name: "unknown image", state: images.Image{}, cmd: images.DitherRequest{DitherID: ditherID}, code: images.CodeNotFound},
		{name: "deleted image", state: build(t, uploaded, deleted), cmd: images.DitherRequest{DitherID: ditherID}, code: images.CodeImageDeleted},
		{name: "no dither id", state: build(t, uploaded), cmd: images.DitherRequest{}, code: images.CodeInvalidInput},
		{name: "levels", state: build(t, uploaded), cmd: images.DitherRequest{DitherID: ditherID, Options: images.DitherInput{Levels: 1}}, code: images.CodeInvalidLevels},
		{name: "algorithm", state: build(t, uploaded), cmd: images.DitherRequest{DitherID: ditherID, Options: images.DitherInput{Algorithm: "nope"}}, code: images.CodeUnknownAlgorithm},
		{name: "strength", state: build(t, uploaded), cmd: images.DitherRequest{DitherID: ditherID, Options: images.DitherInput{Strength: ptr(2.0)}}, code: images.CodeInvalidStrength},
		{name: "colour space", state: build(t, uploaded), cmd: images.DitherRequest{DitherID: ditherID, Options: images.DitherInput{ColorSpace: "hsv"}}, code: images.CodeInvalidColorSpace},
		{name: "retry same options", state: build(t, uploaded, requested(ditherID)), cmd: images.DitherRequest{DitherID: ditherID}, events: 0},
		{name: "same id other options", state: build(t, uploaded, requested(ditherID)), cmd: images.DitherRequest{DitherID: ditherID, Options: images.DitherInput{Levels: 16}}, code: images.CodeAlreadyExists},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evs, err := images.RequestDither(tt.state, tt.cmd)
			wantCode(t, err, tt.code)
			if len(evs) != tt.events {
				t.Fatalf("got %d events, want %d", len(evs), tt.events)
			}
		})
	}
}

func TestCompleteDither(t *testing.T) {
	other := resultCmd(ditherID)
	other.ResultKey = keyA
	rerun := resultCmd(ditherID)
	rerun.DurationMs, rerun.CompletedAt = 999, t0.Add(time.Hour)
	bad := resultCmd(ditherID)
	bad.ResultKey = "zz"
	tests := []struct {
		name   string
		state  images.Image
		cmd    images.DitherResult
		code   string
		events int
	}{
		{name: "ok", state: build(t, uploaded, requested(ditherID)), cmd: resultCmd(ditherID), events: 1},
		{name: "unknown dither", state: build(t, uploaded, requested(ditherID)), cmd: resultCmd(otherID), code: images.CodeNotFound},
		{name: "unknown image", state: images.Image{}, cmd: resultCmd(ditherID), code: images.CodeNotFound},
		{name: "deleted image", state: build(t, uploaded, requested(ditherID), deleted), cmd: resultCmd(ditherID), code: images.CodeImageDeleted},
		{name: "identical repeat", state: build(t, uploaded, requested(ditherID), completed(ditherID)), cmd: resultCmd(ditherID), events: 0},
		{name: "identical re-run", state: build(t, uploaded, requested(ditherID), completed(ditherID)), cmd: rerun, events: 0},
		{name: "different result", state: build(t, uploaded, requested(ditherID), completed(ditherID)), cmd: other, code: images.CodeAlreadyDecided},
		{name: "after failure", state: build(t, uploaded, requested(ditherID), failed(ditherID)), cmd: resultCmd(ditherID), code: images.CodeAlreadyDecided},
		{name: "bad key", state: build(t, uploaded, requested(ditherID)), cmd: bad, code: images.CodeInvalidInput},
		{name: "bad size", state: build(t, uploaded, requested(ditherID)), cmd: images.DitherResult{DitherID: ditherID, ResultKey: keyB}, code: images.CodeInvalidInput},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evs, err := images.CompleteDither(tt.state, tt.cmd)
			wantCode(t, err, tt.code)
			if len(evs) != tt.events {
				t.Fatalf("got %d events, want %d", len(evs), tt.events)
			}
		})
	}
}

func TestFailDither(t *testing.T) {
	fail := func(id uuid.UUID, reason string) images.DitherFailure {
		return images.DitherFailure{DitherID: id, Reason: reason, CompletedAt: t0}
	}
	tests := []struct {
		name   string
		state  images.Image
		cmd    images.DitherFailure
		code   string
		events int
	}{
		{name: "ok", state: build(t, uploaded, requested(ditherID)), cmd: fail(ditherID, "too large"), events: 1},
		{name: "no reason", state: build(t, uploaded, requested(ditherID)), cmd: fail(ditherID, "  "), code: images.CodeInvalidInput},
		{name: "unknown dither", state: build(t, uploaded), cmd: fail(ditherID, "x"), code: images.CodeNotFound},
		{name: "identical repeat", state: build(t, uploaded, requested(ditherID), failed(ditherID)), cmd: fail(ditherID, "image could not be decoded"), events: 0},
		{name: "other reason", state: build(t, uploaded, requested(ditherID), failed(ditherID)), cmd: fail(ditherID, "other"), code: images.CodeAlreadyDecided},
		{name: "after completion", state: build(t, uploaded, requested(ditherID), completed(ditherID)), cmd: fail(ditherID, "x"), code: images.CodeAlreadyDecided},
		{name: "deleted", state: build(t, uploaded, requested(ditherID), deleted), cmd: fail(ditherID, "x"), code: images.CodeImageDeleted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evs, err := images.FailDither(tt.state, tt.cmd)
			wantCode(t, err, tt.code)
			if len(evs) != tt.events {
				t.Fatalf("got %d events, want %d", len(evs), tt.events)
			}
		})
	}
}

func TestFailDitherCapsReason(t *testing.T) {
	long := make([]byte, 2000)
	for i := range long {
		long[i] = 'x'
	}
	evs, err := images.FailDither(build(t, uploaded, requested(ditherID)), images.DitherFailure{DitherID: ditherID, Reason: string(long)})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(evs[0].(images.DitherFailed).Reason); n != 500 {
		t.Fatalf("reason length %d", n)
	}
}

func TestMarkSynced(t *testing.T) {
	synced := func(s images.Image) ([]images.Event, error) {
		return images.MarkSynced(s, images.ImageCloudCopy{SecureURL: "https://res.example/a.png", PublicID: "a"})
	}
	tests := []struct {
		name   string
		state  images.Image
		cmd    images.ImageCloudCopy
		code   string
		events int
	}{
		{name: "ok", state: build(t, uploaded), cmd: images.ImageCloudCopy{SecureURL: "https://res.example/a.png", PublicID: "a"}, events: 1},
		{name: "repeat", state: build(t, uploaded, synced), cmd: images.ImageCloudCopy{SecureURL: "https://res.example/a.png", PublicID: "a"}, events: 0},
		{name: "re-sync", state: build(t, uploaded, synced), cmd: images.ImageCloudCopy{SecureURL: "https://res.example/b.png", PublicID: "b"}, events: 1},
		{name: "http url", state: build(t, uploaded), cmd: images.ImageCloudCopy{SecureURL: "http://res.example/a.png", PublicID: "a"}, code: images.CodeInvalidInput},
		{name: "relative url", state: build(t, uploaded), cmd: images.ImageCloudCopy{SecureURL: "/a.png", PublicID: "a"}, code: images.CodeInvalidInput},
		{name: "no public id", state: build(t, uploaded), cmd: images.ImageCloudCopy{SecureURL: "https://res.example/a.png"}, code: images.CodeInvalidInput},
		{name: "unknown image", state: images.Image{}, cmd: images.ImageCloudCopy{SecureURL: "https://res.example/a.png", PublicID: "a"}, code: images.CodeNotFound},
		{name: "deleted", state: build(t, uploaded, deleted), cmd: images.ImageCloudCopy{SecureURL: "https://res.example/a.png", PublicID: "a"}, code: images.CodeImageDeleted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evs, err := images.MarkSynced(tt.state, tt.cmd)
			wantCode(t, err, tt.code)
			if len(evs) != tt.events {
				t.Fatalf("got %d events, want %d", len(evs), tt.events)
			}
		})
	}
}

func TestMarkDitherSynced(t *testing.T) {
	cp := func(id uuid.UUID) images.DitherCloudCopy {
		return images.DitherCloudCopy{DitherID: id, SecureURL: "https://res.example/d.png", PublicID: "d"}
	}
	synced := func(s images.Image) ([]images.Event, error) { return images.MarkDitherSynced(s, cp(ditherID)) }
	tests := []struct {
		name   string
		state  images.Image
		cmd    images.DitherCloudCopy
		code   string
		events int
	}{
		{name: "ok", state: build(t, uploaded, requested(ditherID), completed(ditherID)), cmd: cp(ditherID), events: 1},
		{name: "repeat", state: build(t, uploaded, requested(ditherID), completed(ditherID), synced), cmd: cp(ditherID), events: 0},
		{name: "pending", state: build(t, uploaded, requested(ditherID)), cmd: cp(ditherID), code: images.CodeDitherNotCompleted},
		{name: "failed", state: build(t, uploaded, requested(ditherID), failed(ditherID)), cmd: cp(ditherID), code: images.CodeDitherNotCompleted},
		{name: "unknown dither", state: build(t, uploaded), cmd: cp(otherID), code: images.CodeNotFound},
		{name: "bad url", state: build(t, uploaded, requested(ditherID), completed(ditherID)), cmd: images.DitherCloudCopy{DitherID: ditherID, SecureURL: "ftp://x", PublicID: "d"}, code: images.CodeInvalidInput},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evs, err := images.MarkDitherSynced(tt.state, tt.cmd)
			wantCode(t, err, tt.code)
			if len(evs) != tt.events {
				t.Fatalf("got %d events, want %d", len(evs), tt.events)
			}
		})
	}
}

// A sync's failure is recorded once, for an active image's original or a
// completed dither's result that has no copy yet; a later successful sync
// records its copy all the same and clears the failure.
func TestFailSync(t *testing.T) {
	original := images.SyncFailure{Reason: "  Cloudinary answered HTTP 401  ", Attempt: 1, At: t0}
	result := images.SyncFailure{DitherID: ditherID, Reason: "gave up after 15 attempts", Attempt: 15, At: t0}
	fail := func(f images.SyncFailure) func(images.Image) ([]images.Event, error) {
		return func(s images.Image) ([]images.Event, error) { return images.FailSync(s, f) }
	}
	synced := func(s images.Image) ([]images.Event, error) {
		return images.MarkSynced(s, images.ImageCloudCopy{SecureURL: "https://res.example/a.png", PublicID: "a"})
	}
	ditherSynced := func(s images.Image) ([]images.Event, error) {
		return images.MarkDitherSynced(s, images.DitherCloudCopy{DitherID: ditherID, SecureURL: "https://res.example/d.png", PublicID: "d"})
	}
	tests := []struct {
		name   string
		state  images.Image
		cmd    images.SyncFailure
		code   string
		events int
	}{
		{name: "original", state: build(t, uploaded), cmd: original, events: 1},
		{name: "original again", state: build(t, uploaded, fail(original)), cmd: original, events: 0},
		{name: "original synced", state: build(t, uploaded, synced), cmd: original, events: 0},
		{name: "result", state: build(t, uploaded, requested(ditherID), completed(ditherID)), cmd: result, events: 1},
		{name: "result again", state: build(t, uploaded, requested(ditherID), completed(ditherID), fail(result)), cmd: result, events: 0},
		{name: "result synced", state: build(t, uploaded, requested(ditherID), completed(ditherID), ditherSynced), cmd: result, events: 0},
		{name: "pending", state: build(t, uploaded, requested(ditherID)), cmd: result, code: images.CodeDitherNotCompleted},
		{name: "unknown dither", state: build(t, uploaded), cmd: images.SyncFailure{DitherID: otherID, Reason: "x"}, code: images.CodeNotFound},
		{name: "no reason", state: build(t, uploaded), cmd: images.SyncFailure{Reason: " "}, code: images.CodeInvalidInput},
		{name: "unknown image", state: images.Image{}, cmd: original, code: images.CodeNotFound},
		{name: "deleted", state: build(t, uploaded, deleted), cmd: original, code: images.CodeImageDeleted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evs, err := images.FailSync(tt.state, tt.cmd)
			wantCode(t, err, tt.code)
			if len(evs) != tt.events {
				t.Fatalf("got %d events, want %d", len(evs), tt.events)
			}
		})
	}
	if evs, _ := images.FailSync(build(t, uploaded), original); evs[0] != (images.ImageSyncFailed{Reason: "Cloudinary answered HTTP 401", Attempt: 1, FailedAt: t0}) {
		t.Errorf("original's failure: %+v", evs[0])
	}
	s := build(t, uploaded, requested(ditherID), completed(ditherID), fail(original), fail(result))
	if s.SyncError != "Cloudinary answered HTTP 401" || s.Dithers[0].SyncError != "gave up after 15 attempts" || s.URL != "" {
		t.Fatalf("failed syncs folded into %q, %q", s.SyncError, s.Dithers[0].SyncError)
	}
	s = build(t, uploaded, requested(ditherID), completed(ditherID), fail(original), fail(result), synced, ditherSynced)
	if s.SyncError != "" || s.Dithers[0].SyncError != "" || s.URL == "" || s.Dithers[0].URL == "" {
		t.Fatalf("a sync after a failure: %+v", s)
	}
}

func TestDelete(t *testing.T) {
	tests := []struct {
		name  string
		state images.Image
		code  string
	}{
		{name: "ok", state: build(t, uploaded, requested(ditherID))},
		{name: "unknown", state: images.Image{}, code: images.CodeNotFound},
		{name: "twice", state: build(t, uploaded, deleted), code: images.CodeNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evs, err := images.Delete(tt.state, images.DeleteImage{Now: t0})
			wantCode(t, err, tt.code)
			if tt.code == "" && len(evs) != 1 {
				t.Fatalf("got %d events", len(evs))
			}
		})
	}
}

func TestErrorIs(t *testing.T) {
	_, err := images.Delete(images.Image{}, images.DeleteImage{})
	if !errors.Is(err, images.ErrNotFound) || errors.Is(err, images.ErrImageDeleted) {
		t.Fatalf("errors.Is mismatch for %v", err)
	}
	var de *images.Error
	if !errors.As(err, &de) || de.Field != "id" || de.Message == "" {
		t.Fatalf("errors.As: %+v", de)
	}
	if images.CodeOf(errors.New("plain")) != "" {
		t.Fatal("CodeOf(plain) != \"\"")
	}
}

// TestHooks changes package-level hooks, so it must not run in parallel.
func TestHooks(t *testing.T) {
	oldAlg, oldPal := images.ValidAlgorithm, images.ValidPalette
	t.Cleanup(func() { images.ValidAlgorithm, images.ValidPalette = oldAlg, oldPal })
	images.ValidAlgorithm = func(s string) bool { return s == "only-this" }
	images.ValidPalette = func(s string) bool { return s == "cga" }
	if _, err := (images.DitherInput{Algorithm: "floyd-steinberg"}).Resolve(); images.CodeOf(err) != images.CodeUnknownAlgorithm {
		t.Fatalf("hook not used: %v", err)
	}
	if _, err := (images.DitherInput{Algorithm: "only-this", Palette: "cga"}).Resolve(); err != nil {
		t.Fatal(err)
	}
	if _, err := (images.DitherInput{Algorithm: "only-this", Palette: "ega"}).Resolve(); images.CodeOf(err) != images.CodeInvalidPalette {
		t.Fatalf("palette hook not used: %v", err)
	}
}

// Errors name the fields as the commands' inputs do: an upload's first
// dither options sit under "dither", a dither request names its image
// "imageId".
func TestErrorFieldsNameTheInput(t *testing.T) {
	cmd := uploadCmd()
	cmd.Dither, cmd.DitherID = &images.DitherInput{Levels: 300, ChannelLevels: &images.ChannelLevels{R: 2, G: 2, B: 2}}, uuid.New()
	_, err := images.Upload(cmd)
	var e *images.Error
	if !errors.As(err, &e) || e.Field != "dither.levels" {
		t.Errorf("upload with bad levels: %v, want field dither.levels", err)
	}
	_, err = images.RequestDither(images.Image{}, images.DitherRequest{DitherID: uuid.New()})
	if !errors.As(err, &e) || e.Field != "imageId" || e.Code != images.CodeNotFound {
		t.Errorf("request on an unknown image: %v, want NOT_FOUND on imageId", err)
	}
	if err := images.WithField(err, "other", "x"); !errors.As(err, &e) || e.Field != "imageId" {
		t.Errorf("WithField renamed a field it was not asked to: %v", err)
	}
}
