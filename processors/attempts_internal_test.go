package processors

import (
	"bytes"
	"context"
	"image"
	"image/png"
	"io"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/imageservice/imageservice/blobstore"
	blobpg "github.com/imageservice/imageservice/blobstore/postgres"
	"github.com/imageservice/imageservice/commands"
	espg "github.com/imageservice/imageservice/eventstore/postgres"
	"github.com/imageservice/imageservice/images"
	"github.com/imageservice/imageservice/internal/teststores"
	"github.com/imageservice/imageservice/internal/testwait"
)

// stuckPut is a blob store whose Put waits until its ctx ends, as a store
// too slow for the job's timeout would; started is closed at the first.
type stuckPut struct {
	blobstore.Store
	started chan struct{}
}

func (s stuckPut) Put(ctx context.Context, _ string, _ io.Reader) (blobstore.Blob, error) {
	select {
	case <-s.started:
	default:
		close(s.started)
	}
	<-ctx.Done()
	return blobstore.Blob{}, ctx.Err()
}

// attemptsWorld is an uploaded image with a pending dither and processors
// whose blob store never finishes a Put.
type attemptsWorld struct {
	cmds    *commands.Service
	procs   *Processors
	image   images.Image
	started chan struct{}
}

func newAttemptsWorld(t *testing.T, jobTimeout time.Duration) *attemptsWorld {
	t.Helper()
	pg := newPGWorld(t)
	res, err := pg.cmds.Upload(context.Background(), commands.UploadInput{Body: bytes.NewReader(grayPNG(t, 40, 30)), Filename: "a.png"})
	if err != nil {
		t.Fatal(err)
	}
	store, blobs, cmds := pg.store, pg.blobs, pg.cmds
	started := make(chan struct{})
	p, err := New(store, cmds, stuckPut{Store: blobs, started: started}, Config{JobTimeout: jobTimeout})
	if err != nil {
		t.Fatal(err)
	}
	return &attemptsWorld{cmds: cmds, procs: p, image: res.Image, started: started}
}

// insert adds the dither's job as the enqueuer would, with maxAttempts.
func (w *attemptsWorld) insert(t *testing.T, maxAttempts int) int64 {
	t.Helper()
	d := w.image.Dithers[0]
	ins, err := w.procs.client.Insert(context.Background(), DitherArgs{ImageID: w.image.ID, DitherID: d.ID}, &river.InsertOpts{MaxAttempts: maxAttempts})
	if err != nil {
		t.Fatal(err)
	}
	return ins.Job.ID
}

func (w *attemptsWorld) job(t *testing.T, id int64) *rivertype.JobRow {
	t.Helper()
	job, err := w.procs.client.JobGet(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return job
}

// A last attempt that runs out of time records the failure with time of
// its own: the dither does not stay PENDING after its job is gone.
func TestLastAttemptTimeoutRecordsFailure(t *testing.T) {
	w := newAttemptsWorld(t, 300*time.Millisecond)
	id := w.insert(t, 1) // the first attempt is the last
	if err := w.procs.client.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.procs.client.Stop(context.Background()) })
	testwait.Until(t, time.Minute, "the job to finish", func() bool {
		return w.job(t, id).FinalizedAt != nil
	})
	img, err := w.cmds.Load(context.Background(), w.image.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got := img.Dithers[0].Status; got != images.DitherStatusFailed {
		t.Errorf("dither status %s after the job finished (%s), want FAILED", got, w.job(t, id).State)
	}
}

// An attempt cut short by the service stopping does not count, even the
// last: its job waits with its attempts intact, and no failure is recorded.
func TestStoppingDoesNotUseAttempts(t *testing.T) {
	w := newAttemptsWorld(t, time.Hour)
	id := w.insert(t, 1)
	if err := w.procs.client.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-w.started:
	case <-time.After(time.Minute):
		t.Fatal("the job did not start in a minute")
	}
	if err := w.procs.client.StopAndCancel(context.Background()); err != nil {
		t.Fatal(err)
	}
	job := w.job(t, id)
	if waiting := job.State == rivertype.JobStateScheduled || job.State == rivertype.JobStateAvailable; !waiting || job.Attempt != 0 {
		t.Errorf("job after the stop: %s, attempt %d of %d; want it waiting with no attempt used", job.State, job.Attempt, job.MaxAttempts)
	}
	img, err := w.cmds.Load(context.Background(), w.image.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got := img.Dithers[0].Status; got != images.DitherStatusPending {
		t.Errorf("dither status %s after the stop, want PENDING", got)
	}
}

// By default the inline processor spreads a dither's attempts over about
// two minutes, so that a short outage does not fail it for good.
func TestInlineRetryWaits(t *testing.T) {
	p := NewInline(nil, nil, nil, Config{})
	var total time.Duration
	for attempt := 2; attempt <= DitherMaxAttempts; attempt++ {
		w := p.retryWait(attempt)
		if w < time.Second || w > time.Minute {
			t.Errorf("attempt %d waits %v", attempt, w)
		}
		total += w
	}
	if total < time.Minute || total > 5*time.Minute {
		t.Errorf("the attempts span %v, want between one and five minutes", total)
	}
}

// pgWorld is the event store, blob store and commands of a fresh
// PostgreSQL schema, migrated for processors.
type pgWorld struct {
	pool  *pgxpool.Pool
	store *espg.Store
	blobs *blobpg.Store
	cmds  *commands.Service
}

func newPGWorld(t *testing.T) pgWorld {
	t.Helper()
	pg := teststores.NewPostgres(t, espg.Options{})
	if err := Migrate(context.Background(), pg.Pool); err != nil {
		t.Fatal(err)
	}
	cmds := commands.New(commands.Postgres{Store: pg.Store, Blobs: pg.Blobs}, commands.Options{AutoDither: true})
	return pgWorld{pool: pg.Pool, store: pg.Store, blobs: pg.Blobs, cmds: cmds}
}

// grayPNG is a black w×h PNG.
func grayPNG(t *testing.T, w, h int) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, image.NewGray(image.Rect(0, 0, w, h))); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}
