package processors

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/imageservice/imageservice/commands"
	"github.com/imageservice/imageservice/eventstore"
	"github.com/imageservice/imageservice/images"
	"github.com/imageservice/imageservice/internal/testwait"
	"github.com/imageservice/imageservice/processors/cloudsync"
	"github.com/imageservice/imageservice/processors/cloudsync/cloudsynctest"
)

// cloudWorld is an uploaded image with a completed dither, processors
// syncing to a fake Cloudinary, and the jobs of both syncs.
type cloudWorld struct {
	pool     *pgxpool.Pool
	cmds     *commands.Service
	procs    *Processors
	cloud    *cloudsynctest.Server
	syncer   *cloudsync.Syncer
	imageID  uuid.UUID
	ditherID uuid.UUID
}

func newCloudWorld(t *testing.T) *cloudWorld {
	t.Helper()
	ctx := context.Background()
	pg := newPGWorld(t)
	pool, store, blobs, cmds := pg.pool, pg.store, pg.blobs, pg.cmds
	png := grayPNG(t, 8, 6)
	res, err := cmds.Upload(ctx, commands.UploadInput{Body: bytes.NewReader(png), Filename: "a.png"})
	if err != nil {
		t.Fatal(err)
	}
	ditherID := res.Image.Dithers[0].ID
	blob, err := blobs.Put(ctx, "image/png", bytes.NewReader(png))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cmds.CompleteDither(ctx, res.Image.ID, images.DitherResult{DitherID: ditherID, ResultKey: blob.Key,
		ByteSize: blob.Size, Width: 8, Height: 6, Colours: 1, CompletedAt: time.Now()}, eventstore.Metadata{}); err != nil {
		t.Fatal(err)
	}
	cloud := cloudsynctest.NewServer(t)
	cfg := cloud.Config()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	p, err := New(store, cmds, blobs, Config{Cloud: &cfg, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	client, err := cloudsync.NewClient(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &cloudWorld{pool: pool, cmds: cmds, procs: p, cloud: cloud, imageID: res.Image.ID, ditherID: ditherID,
		syncer: cloudsync.NewSyncer(client, cmds, blobs, cloudsync.Options{Logger: log})}
}

// runSyncs inserts both syncs' jobs with maxAttempts (0: the default),
// works them, and returns their rows once both are finalized.
func (w *cloudWorld) runSyncs(t *testing.T, maxAttempts int) []*rivertype.JobRow {
	t.Helper()
	ctx := context.Background()
	var ids []int64
	for _, args := range []river.JobArgs{SyncImageArgs{ImageID: w.imageID}, SyncDitherArgs{ImageID: w.imageID, DitherID: w.ditherID}} {
		ins, err := w.procs.client.Insert(ctx, args, &river.InsertOpts{MaxAttempts: maxAttempts})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, ins.Job.ID)
	}
	if err := w.procs.client.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.procs.client.Stop(context.Background()) })
	jobs := make([]*rivertype.JobRow, len(ids))
	testwait.Until(t, time.Minute, "the sync jobs to finish", func() bool {
		for i, id := range ids {
			job, err := w.procs.client.JobGet(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			jobs[i] = job
			if job.FinalizedAt == nil {
				return false
			}
		}
		return true
	})
	return jobs
}

// syncFailures returns the reasons of the image's ImageSyncFailed and
// DitherSyncFailed events.
func (w *cloudWorld) syncFailures(t *testing.T) (original, result []string) {
	t.Helper()
	events, err := w.cmds.History(context.Background(), w.imageID, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range events {
		rec, err := commands.Decode(e)
		if err != nil {
			t.Fatal(err)
		}
		switch ev := rec.Event.(type) {
		case images.ImageSyncFailed:
			original = append(original, ev.Reason)
		case images.DitherSyncFailed:
			result = append(result, ev.Reason)
		}
	}
	return original, result
}

// A sync whose last attempt fails is recorded as failed (ImageSyncFailed,
// DitherSyncFailed), not discarded with nothing to show for it, and its
// job ends.
func TestCloudSyncLastAttemptRecordsFailure(t *testing.T) {
	w := newCloudWorld(t)
	w.cloud.FailNext(http.StatusInternalServerError, 1000)
	jobs := w.runSyncs(t, 1) // the first attempt is the last
	for _, job := range jobs {
		if job.State != rivertype.JobStateCompleted {
			t.Errorf("%s job %s after its last attempt failed, want completed (its failure recorded)", job.Kind, job.State)
		}
	}
	original, result := w.syncFailures(t)
	const want = "gave up after 1 attempts: Cloudinary answered HTTP 500"
	if len(original) != 1 || !strings.HasPrefix(original[0], want) || len(result) != 1 || !strings.HasPrefix(result[0], want) {
		t.Fatalf("sync failures recorded: original %q, result %q; want one each starting %q", original, result, want)
	}
	img, err := w.cmds.Load(context.Background(), w.imageID)
	if err != nil {
		t.Fatal(err)
	}
	if img.SyncError != original[0] || img.Dithers[0].SyncError != result[0] || img.URL != "" {
		t.Errorf("state after the failures: sync errors %q, %q, url %q", img.SyncError, img.Dithers[0].SyncError, img.URL)
	}
}

// A permanent refusal (a Cloudinary 4xx) fails the sync at once, on its
// first attempt of many, and is recorded as a last attempt's failure is.
func TestCloudSyncPermanentErrorRecordsFailure(t *testing.T) {
	w := newCloudWorld(t)
	w.cloud.FailNext(http.StatusBadRequest, 1000)
	for _, job := range w.runSyncs(t, 0) {
		if job.State != rivertype.JobStateCompleted || job.Attempt != 1 {
			t.Errorf("%s job %s after attempt %d of %d, want completed after the first", job.Kind, job.State, job.Attempt, job.MaxAttempts)
		}
	}
	original, result := w.syncFailures(t)
	const want = "Cloudinary answered HTTP 400"
	if len(original) != 1 || !strings.HasPrefix(original[0], want) || len(result) != 1 || !strings.HasPrefix(result[0], want) {
		t.Fatalf("sync failures recorded: original %q, result %q; want one each starting %q", original, result, want)
	}
}

// A last attempt that cannot record the sync's failure (the database is
// down) is snoozed, to try again later still as the last, instead of
// being discarded; an earlier attempt's error is returned for River to
// retry.
func TestCloudSyncLastAttemptNotRecordedIsSnoozed(t *testing.T) {
	w := newCloudWorld(t)
	worker := &cloudWorker[SyncImageArgs]{log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		do: func(ctx context.Context, a SyncImageArgs) error { return w.syncer.SyncImage(ctx, a.ImageID) },
		failed: func(ctx context.Context, a SyncImageArgs, attempt int, cause error) error {
			return w.syncer.RecordFailure(ctx, a.ImageID, uuid.Nil, attempt, cause)
		}}
	w.pool.Close()
	job := func(attempt int) *river.Job[SyncImageArgs] {
		return &river.Job[SyncImageArgs]{Args: SyncImageArgs{ImageID: w.imageID},
			JobRow: &rivertype.JobRow{ID: 1, Kind: SyncImageArgs{}.Kind(), Attempt: attempt, MaxAttempts: 3}}
	}
	var snooze *river.JobSnoozeError
	if err := worker.Work(context.Background(), job(2)); err == nil || errors.As(err, &snooze) {
		t.Errorf("attempt 2 of 3 with the database down: %v, want its error to retry", err)
	}
	if err := worker.Work(context.Background(), job(3)); !errors.As(err, &snooze) || snooze.Duration != lastAttemptSnooze {
		t.Errorf("last attempt with the database down: %v, want snoozed for %v", err, lastAttemptSnooze)
	}
}

// A deleted image's assets are destroyed however long Cloudinary fails:
// the last attempt of a destroy that meets a server error is snoozed, not
// discarded, and a later one destroys them.
func TestCloudDestroyKeepsTrying(t *testing.T) {
	w := newCloudWorld(t)
	if err := w.syncer.SyncImage(context.Background(), w.imageID); err != nil {
		t.Fatal(err)
	}
	if _, err := w.cmds.Delete(context.Background(), w.imageID, eventstore.Metadata{}); err != nil {
		t.Fatal(err)
	}
	worker := &cloudWorker[DestroyImageArgs]{log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		do: func(ctx context.Context, a DestroyImageArgs) error { return w.syncer.DestroyImage(ctx, a.ImageID) }}
	job := func(attempt int) *river.Job[DestroyImageArgs] {
		return &river.Job[DestroyImageArgs]{Args: DestroyImageArgs{ImageID: w.imageID},
			JobRow: &rivertype.JobRow{ID: 1, Kind: DestroyImageArgs{}.Kind(), Attempt: attempt, MaxAttempts: 3}}
	}
	var snooze *river.JobSnoozeError
	w.cloud.FailNext(http.StatusInternalServerError, 3)
	if err := worker.Work(context.Background(), job(2)); err == nil || errors.As(err, &snooze) {
		t.Errorf("attempt 2 of 3 with Cloudinary failing: %v, want its error to retry", err)
	}
	for range 2 {
		if err := worker.Work(context.Background(), job(3)); !errors.As(err, &snooze) || snooze.Duration != destroyRetry {
			t.Errorf("last attempt with Cloudinary failing: %v, want snoozed for %v", err, destroyRetry)
		}
	}
	if _, ok := w.cloud.Asset(cloudsync.ImagePublicID(w.imageID)); !ok {
		t.Fatal("the asset went before Cloudinary answered")
	}
	if err := worker.Work(context.Background(), job(3)); err != nil {
		t.Errorf("last attempt once Cloudinary answers: %v", err)
	}
	if _, ok := w.cloud.Asset(cloudsync.ImagePublicID(w.imageID)); ok {
		t.Error("the deleted image's asset is still at Cloudinary")
	}
}
