package processors

import (
	"bytes"
	"context"
	"image"
	"image/png"
	"testing"
	"time"

	"github.com/imageservice/imageservice/blobstore"
	"github.com/imageservice/imageservice/commands"
	"github.com/imageservice/imageservice/eventstore"
	"github.com/imageservice/imageservice/images"
	"github.com/imageservice/imageservice/internal/teststores"
	"github.com/imageservice/imageservice/internal/testwait"
)

// slowOpen is a blob store whose Open waits until its ctx ends and then
// opens the blob all the same, as a store slower than the attempt's
// timeout would: the dither then starts with its time already up.
type slowOpen struct{ blobstore.Store }

func (s slowOpen) Open(ctx context.Context, key string) (blobstore.Reader, blobstore.Blob, error) {
	<-ctx.Done()
	return s.Store.Open(context.WithoutCancel(ctx), key)
}

// inlineWorld is an uploaded image with a pending dither on the embedded
// default (SQLite and files), and an inline processor with the given
// attempt timeout whose blob store is wrapped by wrap.
type inlineWorld struct {
	cmds    *commands.Service
	proc    *Inline
	image   images.Image
	request eventstore.Event // the DitherRequested
	args    DitherArgs
}

func newInlineWorld(t *testing.T, timeout time.Duration, wrap func(blobstore.Store) blobstore.Store) *inlineWorld {
	t.Helper()
	ctx := context.Background()
	lite := teststores.NewSQLite(t)
	store, blobs := lite.Store, lite.Blobs
	cmds := commands.New(commands.SQLite{Store: store, Blobs: blobs}, commands.Options{AutoDither: true})
	var b bytes.Buffer
	if err := png.Encode(&b, image.NewGray(image.Rect(0, 0, 40, 30))); err != nil {
		t.Fatal(err)
	}
	res, err := cmds.Upload(ctx, commands.UploadInput{Body: &b, Filename: "a.png"})
	if err != nil {
		t.Fatal(err)
	}
	events, err := store.ReadStream(ctx, images.StreamID(res.Image.ID), 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	w := &inlineWorld{cmds: cmds, image: res.Image,
		proc: NewInline(store, cmds, wrap(blobs), Config{Concurrency: 1, JobTimeout: timeout}),
		args: DitherArgs{ImageID: res.Image.ID, DitherID: res.Image.Dithers[0].ID}}
	for _, e := range events {
		if e.Type == images.TypeDitherRequested {
			w.request = e
		}
	}
	if w.request.Type == "" {
		t.Fatal("no DitherRequested in the image's stream")
	}
	return w
}

// status is the dither's status in the log.
func (w *inlineWorld) status(t *testing.T) images.Dither {
	t.Helper()
	img, err := w.cmds.Load(context.Background(), w.image.ID)
	if err != nil {
		t.Fatal(err)
	}
	return img.Dithers[0]
}

// returns runs f and fails the test if it has not returned within a
// minute (an attempt without a timeout never does).
func returns(t *testing.T, what string, f func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- f() }()
	var err error
	testwait.Until(t, time.Minute, what+" to return", func() bool {
		select {
		case err = <-done:
			return true
		default:
			return false
		}
	})
	return err
}

// An attempt of the inline processor at a dither whose blob store never
// finishes a Put runs out of time (JobTimeout): the first parks the
// dither, counted as failed once, its batch done, and leaves it PENDING;
// the last records it FAILED, as any attempt failing for a transient
// reason does.
func TestInlineAttemptTimeout(t *testing.T) {
	started := make(chan struct{})
	w := newInlineWorld(t, 50*time.Millisecond, func(s blobstore.Store) blobstore.Store {
		return stuckPut{Store: s, started: started}
	})
	w.proc.retry = time.Hour // no second attempt while the test looks
	ctx, stop := context.WithCancel(t.Context())
	batch := eventstore.Batch{Events: []eventstore.Event{w.request}, Checkpoint: eventstore.Checkpoint{Position: w.request.Position}}
	err := returns(t, "the first attempt", func() error { return w.proc.handle(ctx, batch) })
	tr, _ := w.proc.triesOf(w.args)
	if err != nil || tr.failed != 1 || len(w.proc.parts[0].parkedNow()) != 1 {
		t.Fatalf("the first attempt, out of time: %v, %d failed attempts, %d parked; want the batch done, the dither parked after one",
			err, tr.failed, len(w.proc.parts[0].parkedNow()))
	}
	stop()
	w.proc.wg.Wait()
	if d := w.status(t); d.Status != images.DitherStatusPending {
		t.Fatalf("after the first attempt ran out of time: dither %s (%s), want PENDING", d.Status, d.Error)
	}
	err = returns(t, "the last attempt", func() error {
		return w.proc.try(context.Background(), w.request, w.args, DitherMaxAttempts)
	})
	if err != nil {
		t.Fatalf("the last attempt: %v, want its failure recorded", err)
	}
	if d := w.status(t); d.Status != images.DitherStatusFailed || d.Error == "" {
		t.Fatalf("after the last attempt ran out of time: dither %s (%q), want FAILED with a reason", d.Status, d.Error)
	}
}

// An attempt whose time is up when the engine starts stops it, and fails
// as out of time (transient), not as an image that cannot be dithered
// (which the last attempt could not record, its time being up).
func TestInlineAttemptTimeoutStopsTheEngine(t *testing.T) {
	w := newInlineWorld(t, 50*time.Millisecond, func(s blobstore.Store) blobstore.Store { return slowOpen{s} })
	err := returns(t, "the first attempt", func() error {
		return w.proc.try(context.Background(), w.request, w.args, 1)
	})
	if err == nil {
		t.Fatal("the first attempt, out of time, did not fail")
	}
	if d := w.status(t); d.Status != images.DitherStatusPending {
		t.Fatalf("after the first attempt ran out of time: dither %s (%q), want PENDING", d.Status, d.Error)
	}
	t.Logf("the attempt: %v", err)
	err = returns(t, "the last attempt", func() error {
		return w.proc.try(context.Background(), w.request, w.args, DitherMaxAttempts)
	})
	if d := w.status(t); err != nil || d.Status != images.DitherStatusFailed || d.Error == "" {
		t.Fatalf("after the last attempt ran out of time: %v, dither %s (%q), want FAILED with a reason", err, d.Status, d.Error)
	}
}
