package processors

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/imageservice/imageservice/blobstore"
	"github.com/imageservice/imageservice/commands"
	"github.com/imageservice/imageservice/eventstore"
	"github.com/imageservice/imageservice/images"
	"github.com/imageservice/imageservice/internal/teststores"
	"github.com/imageservice/imageservice/internal/testwait"
)

// unreadableOriginal is a blob store that cannot read one original (as a
// disk with a bad sector would) until healed, and counts the Opens of
// each blob. When held is set, the Opens of that original after the first
// wait for it to be closed before they fail.
type unreadableOriginal struct {
	blobstore.Store
	key  string
	held chan struct{}

	mu     sync.Mutex
	opens  map[string]int
	healed bool
}

func (u *unreadableOriginal) Open(ctx context.Context, key string) (blobstore.Reader, blobstore.Blob, error) {
	u.mu.Lock()
	u.opens[key]++
	n, healed := u.opens[key], u.healed
	u.mu.Unlock()
	if key != u.key || healed {
		return u.Store.Open(ctx, key)
	}
	if n > 1 && u.held != nil {
		select {
		case <-u.held:
		case <-ctx.Done():
			return nil, blobstore.Blob{}, ctx.Err()
		}
	}
	return nil, blobstore.Blob{}, errors.New("read " + key + ": input/output error")
}

func (u *unreadableOriginal) heal() {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.healed = true
}

func (u *unreadableOriginal) openCount(key string) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.opens[key]
}

// parkWorld is the embedded default (SQLite and files) with two images
// uploaded, each with a dither requested: sick, whose original cannot be
// read, and well after it.
type parkWorld struct {
	lite       teststores.SQLite
	cmds       *commands.Service
	blobs      *unreadableOriginal
	sick, well images.Image
}

func newParkWorld(t *testing.T) *parkWorld {
	t.Helper()
	lite := teststores.NewSQLite(t)
	w := &parkWorld{lite: lite, cmds: commands.New(commands.SQLite{Store: lite.Store, Blobs: lite.Blobs}, commands.Options{AutoDither: true})}
	w.sick, w.well = w.upload(t, 40), w.upload(t, 41)
	w.blobs = &unreadableOriginal{Store: lite.Blobs, key: w.sick.SHA256, opens: map[string]int{}}
	return w
}

func (w *parkWorld) upload(t *testing.T, width int) images.Image {
	t.Helper()
	res, err := w.cmds.Upload(context.Background(), commands.UploadInput{Body: bytes.NewReader(grayPNG(t, width, 30)), Filename: "a.png"})
	if err != nil {
		t.Fatal(err)
	}
	return res.Image
}

// inline returns an inline processor of one partition on the world.
func (w *parkWorld) inline(retryBase time.Duration) *Inline {
	return NewInline(w.lite.Store, w.cmds, w.blobs, Config{Concurrency: 1, InlineRetryBase: retryBase})
}

// run runs p until the returned function (or the test's end) stops it.
func (w *parkWorld) run(t *testing.T, p *Inline) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = p.Run(ctx, &eventstore.Runner{Store: w.lite.Store}) }()
	stop = func() { cancel(); <-done }
	t.Cleanup(stop)
	return stop
}

// dither is the image's dither as its stream has it, and the number of
// outcomes (DitherCompleted, DitherFailed) recorded for it.
func (w *parkWorld) dither(t *testing.T, img images.Image) (images.Dither, int) {
	t.Helper()
	loaded, err := w.cmds.Load(context.Background(), img.ID)
	if err != nil {
		t.Fatal(err)
	}
	events, err := w.lite.Store.ReadStream(context.Background(), images.StreamID(img.ID), 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	outcomes := 0
	for _, e := range events {
		if e.Type == images.TypeDitherCompleted || e.Type == images.TypeDitherFailed {
			outcomes++
		}
	}
	return loaded.Dithers[0], outcomes
}

func (w *parkWorld) args(img images.Image) DitherArgs {
	return DitherArgs{ImageID: img.ID, DitherID: img.Dithers[0].ID}
}

// A dither that fails transiently does not hold up the dither after it
// in its partition: the healthy one completes while the failing one waits
// for its second attempt, PENDING after one; the failing one is then
// tried DitherMaxAttempts times in all and recorded FAILED, each dither
// with one outcome.
func TestInlineFailingDitherDoesNotHoldUpTheNext(t *testing.T) {
	w := newParkWorld(t)
	w.blobs.held = make(chan struct{})
	p := w.inline(time.Millisecond)
	w.run(t, p)
	testwait.Until(t, time.Minute, "the healthy dither to complete", func() bool {
		d, _ := w.dither(t, w.well)
		return d.Status == images.DitherStatusCompleted
	})
	tr, _ := p.triesOf(w.args(w.sick))
	if d, _ := w.dither(t, w.sick); d.Status != images.DitherStatusPending || tr.failed != 1 {
		t.Fatalf("the failing dither when the next completed: %s after %d failed attempts, want PENDING after 1", d.Status, tr.failed)
	}
	close(w.blobs.held)
	testwait.Until(t, time.Minute, "the failing dither to be recorded FAILED", func() bool {
		d, _ := w.dither(t, w.sick)
		return d.Status != images.DitherStatusPending
	})
	sick, sickOutcomes := w.dither(t, w.sick)
	_, wellOutcomes := w.dither(t, w.well)
	if n := w.blobs.openCount(w.sick.SHA256); sick.Status != images.DitherStatusFailed || n != DitherMaxAttempts ||
		sickOutcomes != 1 || wellOutcomes != 1 {
		t.Fatalf("the failing dither %s after %d attempts, want FAILED after %d; outcomes %d and %d, want one each",
			sick.Status, n, DitherMaxAttempts, sickOutcomes, wellOutcomes)
	}
}

// A dither parked when the processor stops (as a crash would leave it)
// is not lost: the checkpoint stays before it, the lag counts it, and the
// next processor on the store does it, without doing the dither after it
// again.
func TestInlineParkedDitherSurvivesAStop(t *testing.T) {
	w := newParkWorld(t)
	p := w.inline(time.Hour) // no second attempt while this one runs
	stop := w.run(t, p)
	ctx := context.Background()
	key := eventstore.CheckpointKey{Subscription: InlineName}
	var cp eventstore.Position
	testwait.Until(t, time.Minute, "the healthy dither to complete and the checkpoint to be stored", func() bool {
		var err error
		if cp, err = w.lite.Store.Checkpoint(ctx, key); err != nil {
			t.Fatal(err)
		}
		d, _ := w.dither(t, w.well)
		return d.Status == images.DitherStatusCompleted && cp != (eventstore.Position{})
	})
	if request := w.request(t, w.sick); !cp.Less(request.Position) {
		t.Fatalf("checkpoint at %s with the dither at %s parked, want it before", cp, request.Position)
	}
	if s, err := p.Stats(ctx); err != nil || s.Queued < 1 {
		t.Errorf("stats with a dither parked: %+v, %v; want it queued", s, err)
	}
	stop()
	if d, _ := w.dither(t, w.sick); d.Status != images.DitherStatusPending {
		t.Fatalf("the parked dither after the stop: %s, want PENDING", d.Status)
	}
	w.blobs.heal()
	w.run(t, w.inline(time.Millisecond))
	testwait.Until(t, time.Minute, "the parked dither to complete after the restart", func() bool {
		d, _ := w.dither(t, w.sick)
		return d.Status == images.DitherStatusCompleted
	})
	_, sickOutcomes := w.dither(t, w.sick)
	_, wellOutcomes := w.dither(t, w.well)
	if n := w.blobs.openCount(w.well.SHA256); sickOutcomes != 1 || wellOutcomes != 1 || n != 1 {
		t.Fatalf("outcomes %d and %d, the healthy original opened %d times; want one each, opened once",
			sickOutcomes, wellOutcomes, n)
	}
}

// request is the image's DitherRequested event.
func (w *parkWorld) request(t *testing.T, img images.Image) eventstore.Event {
	t.Helper()
	events, err := w.lite.Store.ReadStream(context.Background(), images.StreamID(img.ID), 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range events {
		if e.Type == images.TypeDitherRequested {
			return e
		}
	}
	t.Fatal("no DitherRequested in the image's stream")
	return eventstore.Event{}
}

// A partition handed over again after its lease was lost (a new epoch)
// stops the retry goroutine of the old lease, and parks a dither that
// already failed in this process again without an attempt, its count of
// failed attempts kept, so that the attempts stay bounded.
func TestInlineLostLeaseKeepsAttempts(t *testing.T) {
	w := newParkWorld(t)
	p := w.inline(time.Hour)
	ctx := t.Context()
	key := eventstore.CheckpointKey{Subscription: InlineName}
	request := w.request(t, w.sick)
	handle := func() *partition {
		lease, err := w.lite.Store.AcquireLease(ctx, key, "test", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		lctx, lost := context.WithCancel(ctx)
		t.Cleanup(lost)
		b := eventstore.Batch{Events: []eventstore.Event{request}, Checkpoint: eventstore.Checkpoint{Key: key, Epoch: lease.Epoch, Position: request.Position}}
		if err := p.handle(lctx, b); err != nil {
			t.Fatal(err)
		}
		lost()
		if err := w.lite.Store.ReleaseLease(ctx, lease); err != nil {
			t.Fatal(err)
		}
		return p.parts[0]
	}
	first := handle()
	second := handle()
	<-first.done
	tr, _ := p.triesOf(w.args(w.sick))
	if n := w.blobs.openCount(w.sick.SHA256); n != 1 || tr.failed != 1 || len(second.parkedNow()) != 1 || first == second {
		t.Fatalf("after the second lease: %d attempts, %d counted failed, %d parked; want 1, 1 and 1", n, tr.failed, len(second.parkedNow()))
	}
}
