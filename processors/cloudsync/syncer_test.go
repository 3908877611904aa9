package cloudsync_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/google/uuid"

	blobpg "github.com/imageservice/imageservice/blobstore/postgres"
	"github.com/imageservice/imageservice/commands"
	"github.com/imageservice/imageservice/eventstore"
	espg "github.com/imageservice/imageservice/eventstore/postgres"
	"github.com/imageservice/imageservice/images"
	"github.com/imageservice/imageservice/internal/teststores"
	"github.com/imageservice/imageservice/processors/cloudsync"
	"github.com/imageservice/imageservice/processors/cloudsync/cloudsynctest"
)

// world is a command service on a fresh schema and a Syncer on a fake
// Cloudinary.
type world struct {
	t      *testing.T
	svc    *commands.Service
	blobs  *blobpg.Store
	fake   *cloudsynctest.Server
	syncer *cloudsync.Syncer
}

func newWorld(t *testing.T) *world {
	t.Helper()
	pg := teststores.NewPostgres(t, espg.Options{})
	store := pg.Store
	w := &world{t: t, blobs: pg.Blobs, fake: cloudsynctest.NewServer(t)}
	w.svc = commands.New(commands.Postgres{Store: store, Blobs: w.blobs}, commands.Options{})
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	w.syncer = cloudsync.NewSyncer(newClient(t, w.fake.Config()), w.svc, w.blobs, cloudsync.Options{Logger: log})
	return w
}

// upload uploads an image with one dither and returns their ids.
func (w *world) upload() (uuid.UUID, uuid.UUID) {
	w.t.Helper()
	res, err := w.svc.Upload(context.Background(), commands.UploadInput{
		Body: bytes.NewReader(pngBytes(w.t, 8, 8, 7)), Filename: "a.png", Dither: &images.DitherInput{},
	})
	if err != nil {
		w.t.Fatal(err)
	}
	return res.Image.ID, res.Image.Dithers[0].ID
}

// complete records a result for the dither and returns its bytes.
func (w *world) complete(imageID, ditherID uuid.UUID) []byte {
	w.t.Helper()
	ctx := context.Background()
	data := pngBytes(w.t, 8, 8, 99)
	blob, err := w.blobs.Put(ctx, "image/png", bytes.NewReader(data))
	if err != nil {
		w.t.Fatal(err)
	}
	_, err = w.svc.CompleteDither(ctx, imageID, images.DitherResult{DitherID: ditherID, ResultKey: blob.Key,
		ByteSize: blob.Size, Width: 8, Height: 8, Colours: 2, CompletedAt: time.Now()}, eventstore.Metadata{})
	if err != nil {
		w.t.Fatal(err)
	}
	return data
}

func (w *world) load(id uuid.UUID) images.Image {
	w.t.Helper()
	img, err := w.svc.Load(context.Background(), id)
	if err != nil {
		w.t.Fatal(err)
	}
	return img
}

// countEvents counts an image's events of a type.
func (w *world) countEvents(id uuid.UUID, typ string) int {
	w.t.Helper()
	events, err := w.svc.History(context.Background(), id, 0, 1000)
	if err != nil {
		w.t.Fatal(err)
	}
	n := 0
	for _, e := range events {
		if e.Type == typ {
			n++
		}
	}
	return n
}

func TestSyncImageRecordsOnce(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	imageID, _ := w.upload()
	for range 2 {
		if err := w.syncer.SyncImage(ctx, imageID); err != nil {
			t.Fatal(err)
		}
	}
	img := w.load(imageID)
	pid := cloudsync.ImagePublicID(imageID)
	a, ok := w.fake.Asset(pid)
	if !ok || a.Uploads != 1 || w.fake.AssetCount() != 1 {
		t.Fatalf("asset %s: %v, uploads %d, assets %d; want one upload", pid, ok, a.Uploads, w.fake.AssetCount())
	}
	if img.PublicID != pid || img.URL == "" || img.URL[:8] != "https://" {
		t.Fatalf("state: public id %q, url %q", img.PublicID, img.URL)
	}
	if n := w.countEvents(imageID, images.TypeImageSynced); n != 1 {
		t.Fatalf("%d ImageSynced events, want 1", n)
	}
}

func TestSyncDitherRecordsOnce(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	imageID, ditherID := w.upload()
	if err := w.syncer.SyncDither(ctx, imageID, ditherID); err == nil || cloudsync.Retryable(err) {
		t.Fatalf("sync of a pending dither: %v; want a permanent error", err)
	}
	data := w.complete(imageID, ditherID)
	for range 2 {
		if err := w.syncer.SyncDither(ctx, imageID, ditherID); err != nil {
			t.Fatal(err)
		}
	}
	pid := cloudsync.DitherPublicID(imageID, ditherID)
	a, ok := w.fake.Asset(pid)
	if !ok || a.Uploads != 1 || !bytes.Equal(a.Data, data) {
		t.Fatalf("asset %s: %v, uploads %d; want the result uploaded once", pid, ok, a.Uploads)
	}
	d, _ := w.load(imageID).Dither(ditherID)
	if d.PublicID != pid || d.URL == "" {
		t.Fatalf("dither state: public id %q, url %q", d.PublicID, d.URL)
	}
	if n := w.countEvents(imageID, images.TypeDitherSynced); n != 1 {
		t.Fatalf("%d DitherSynced events, want 1", n)
	}
}

func TestSyncRetriesAfterRateLimit(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	imageID, _ := w.upload()
	w.fake.FailNext(420, 1)
	err := w.syncer.SyncImage(ctx, imageID)
	if !cloudsync.Retryable(err) {
		t.Fatalf("rate limited: %v; want a retryable error", err)
	}
	if img := w.load(imageID); img.URL != "" || w.countEvents(imageID, images.TypeImageSynced) != 0 {
		t.Fatal("a failed sync recorded something")
	}
	if err := w.syncer.SyncImage(ctx, imageID); err != nil {
		t.Fatalf("the retry: %v", err)
	}
	if w.load(imageID).URL == "" {
		t.Fatal("not synced after the retry")
	}
}

func TestBadSecretFailsSyncPermanently(t *testing.T) {
	w := newWorld(t)
	imageID, _ := w.upload()
	cfg := w.fake.Config()
	cfg.APISecret = "not-the-secret"
	s := cloudsync.NewSyncer(newClient(t, cfg), w.svc, w.blobs, cloudsync.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	err := s.SyncImage(context.Background(), imageID)
	var apiErr *cloudsync.APIError
	if !errors.As(err, &apiErr) || cloudsync.Retryable(err) {
		t.Fatalf("got %v; want a permanent API error", err)
	}
	if w.load(imageID).URL != "" || w.fake.AssetCount() != 0 {
		t.Fatal("a refused sync left something")
	}
}

func TestDestroyOnDelete(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	imageID, ditherID := w.upload()
	w.complete(imageID, ditherID)
	if err := w.syncer.SyncImage(ctx, imageID); err != nil {
		t.Fatal(err)
	}
	if err := w.syncer.SyncDither(ctx, imageID, ditherID); err != nil {
		t.Fatal(err)
	}
	if err := w.syncer.DestroyImage(ctx, imageID); err == nil || cloudsync.Retryable(err) {
		t.Fatalf("destroying an image that is not deleted: %v; want a permanent error", err)
	}
	if w.fake.AssetCount() != 2 {
		t.Fatalf("%d assets before the delete, want 2", w.fake.AssetCount())
	}
	if _, err := w.svc.Delete(ctx, imageID, eventstore.Metadata{}); err != nil {
		t.Fatal(err)
	}
	for range 2 { // the second time, every asset is "not found": done
		if err := w.syncer.DestroyImage(ctx, imageID); err != nil {
			t.Fatal(err)
		}
		if n := w.fake.AssetCount(); n != 0 {
			t.Fatalf("%d assets left", n)
		}
	}
	if c := w.fake.Counts(); c.Destroys != 4 {
		t.Fatalf("%d destroys, want 4", c.Destroys)
	}
	// Syncing a deleted image is done and uploads nothing.
	if err := w.syncer.SyncImage(ctx, imageID); err != nil {
		t.Fatal(err)
	}
	if w.fake.AssetCount() != 0 || w.fake.Counts().Uploads != 2 {
		t.Fatal("a deleted image was uploaded")
	}
}

func TestDestroyRateLimited(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	imageID, _ := w.upload()
	if err := w.syncer.SyncImage(ctx, imageID); err != nil {
		t.Fatal(err)
	}
	if _, err := w.svc.Delete(ctx, imageID, eventstore.Metadata{}); err != nil {
		t.Fatal(err)
	}
	w.fake.FailNext(429, 1)
	if err := w.syncer.DestroyImage(ctx, imageID); !cloudsync.Retryable(err) {
		t.Fatalf("rate limited destroy: %v; want retryable", err)
	}
	if err := w.syncer.DestroyImage(ctx, imageID); err != nil || w.fake.AssetCount() != 0 {
		t.Fatalf("the retry: %v, %d assets", err, w.fake.AssetCount())
	}
}

func TestSyncUnknownImageIsPermanent(t *testing.T) {
	w := newWorld(t)
	err := w.syncer.SyncImage(context.Background(), uuid.New())
	if !errors.Is(err, images.ErrNotFound) || cloudsync.Retryable(err) {
		t.Fatalf("got %v; want a permanent not found", err)
	}
}

func TestMarkSyncedIsIdempotent(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	imageID, _ := w.upload()
	cp := images.ImageCloudCopy{SecureURL: "https://res.cloudinary.com/c/image/upload/v1/x.png", PublicID: "x"}
	for range 2 {
		if _, err := w.svc.MarkSynced(ctx, imageID, cp, eventstore.Metadata{}); err != nil {
			t.Fatal(err)
		}
	}
	if n := w.countEvents(imageID, images.TypeImageSynced); n != 1 {
		t.Fatalf("%d ImageSynced after the same copy twice, want 1", n)
	}
	cp.SecureURL = "https://res.cloudinary.com/c/image/upload/v2/x.png"
	if _, err := w.svc.MarkSynced(ctx, imageID, cp, eventstore.Metadata{}); err != nil {
		t.Fatal(err)
	}
	if n := w.countEvents(imageID, images.TypeImageSynced); n != 2 || w.load(imageID).URL != cp.SecureURL {
		t.Fatalf("%d ImageSynced after a re-sync, want 2 and the new URL", n)
	}
}

// deletingImages deletes the image just before recording its sync, as a
// user deleting it while it uploads would.
type deletingImages struct{ *commands.Service }

func (d deletingImages) MarkSynced(ctx context.Context, id uuid.UUID, c images.ImageCloudCopy, m eventstore.Metadata) (commands.Result, error) {
	if _, err := d.Delete(ctx, id, m); err != nil {
		return commands.Result{}, err
	}
	return d.Service.MarkSynced(ctx, id, c, m)
}

func TestDeletedWhileSyncingLeavesNoAsset(t *testing.T) {
	w := newWorld(t)
	imageID, _ := w.upload()
	s := cloudsync.NewSyncer(newClient(t, w.fake.Config()), deletingImages{w.svc}, w.blobs,
		cloudsync.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err := s.SyncImage(context.Background(), imageID); err != nil {
		t.Fatal(err)
	}
	if c := w.fake.Counts(); w.fake.AssetCount() != 0 || c.Uploads != 1 || c.Destroys != 1 {
		t.Fatalf("counts %+v, %d assets: want the stray upload destroyed", c, w.fake.AssetCount())
	}
}
