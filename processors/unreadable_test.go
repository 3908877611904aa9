package processors_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	blobpg "github.com/imageservice/imageservice/blobstore/postgres"
	"github.com/imageservice/imageservice/commands"
	"github.com/imageservice/imageservice/eventstore"
	espg "github.com/imageservice/imageservice/eventstore/postgres"
	"github.com/imageservice/imageservice/images"
	"github.com/imageservice/imageservice/internal/teststores"
	"github.com/imageservice/imageservice/internal/testwait"
	"github.com/imageservice/imageservice/processors"
)

// unreadableCases are events that a newer build may write to an image's
// stream and this one cannot read.
var unreadableCases = []struct {
	name string
	ev   func() eventstore.NewEvent
	want error
}{
	{"newer request version", func() eventstore.NewEvent {
		return rawEvent(images.TypeDitherRequested, images.DitherRequestedVersion+1, `{"dither_id": "`+uuid.NewString()+`", "levels": 4}`)
	}, images.ErrUnknownSchemaVersion},
	{"unknown type", func() eventstore.NewEvent { return rawEvent("DitherRequestedInBulk", 1, `{}`) }, images.ErrUnknownEventType},
}

// unreadableLog is a log with an image whose stream holds an event this
// build cannot read, followed by another image with a dither requested.
type unreadableLog struct {
	store  *espg.Store
	blobs  *blobpg.Store
	cmds   *commands.Service
	events []eventstore.Event
	other  uuid.UUID // the image whose dither follows the unreadable event
}

func newUnreadableLog(t *testing.T, ev eventstore.NewEvent) *unreadableLog {
	t.Helper()
	pg := teststores.NewPostgres(t, espg.Options{})
	ctx := context.Background()
	if err := processors.Migrate(ctx, pg.Pool); err != nil {
		t.Fatal(err)
	}
	l := &unreadableLog{store: pg.Store, blobs: pg.Blobs}
	l.cmds = commands.New(commands.Postgres{Store: l.store, Blobs: l.blobs}, commands.Options{AutoDither: true})
	first := l.upload(t, true)
	if _, err := l.store.Append(ctx, images.StreamID(first), eventstore.Exact(1), ev); err != nil {
		t.Fatal(err)
	}
	l.other = l.upload(t, false)
	var err error
	testwait.Until(t, 20*time.Second, "the four events to be readable", func() bool {
		l.events, err = l.store.ReadAll(ctx, eventstore.Position{}, 100)
		return err != nil || len(l.events) >= 4
	})
	if err != nil || len(l.events) != 4 {
		t.Fatalf("read the log: %d events, %v", len(l.events), err)
	}
	return l
}

func (l *unreadableLog) upload(t *testing.T, noDither bool) uuid.UUID {
	t.Helper()
	res, err := l.cmds.Upload(context.Background(), commands.UploadInput{Body: bytes.NewReader(testPNG(t)), Filename: "a.png", NoDither: noDither})
	if err != nil {
		t.Fatal(err)
	}
	return res.Image.ID
}

// pending reports whether the other image's dither is still PENDING.
func (l *unreadableLog) pending(t *testing.T) bool {
	t.Helper()
	img, err := l.cmds.Load(context.Background(), l.other)
	if err != nil || len(img.Dithers) != 1 {
		t.Fatalf("load the other image: %+v, %v", img, err)
	}
	return img.Dithers[0].Status == images.DitherStatusPending
}

// TestEnqueuerStopsAtUnreadableEvents: the job queue's subscription fails
// a batch at an event this build cannot read, with nothing enqueued and
// its checkpoint where it was, rather than skip it (a DitherRequested of
// a newer version would stay PENDING for ever); the batch without that
// event enqueues the other image's dither.
func TestEnqueuerStopsAtUnreadableEvents(t *testing.T) {
	for _, c := range unreadableCases {
		t.Run(c.name, func(t *testing.T) {
			l := newUnreadableLog(t, c.ev())
			ctx := context.Background()
			p, err := processors.New(l.store, l.cmds, l.blobs, processors.Config{})
			if err != nil {
				t.Fatal(err)
			}
			key := eventstore.CheckpointKey{Subscription: processors.EnqueuerName}
			lease, err := l.store.AcquireLease(ctx, key, "test", time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			handle := func(events []eventstore.Event) error {
				return p.Enqueuer().Handler(ctx, eventstore.Batch{Events: events,
					Checkpoint: eventstore.Checkpoint{Key: key, Epoch: lease.Epoch, Position: events[len(events)-1].Position}})
			}
			err = handle(l.events)
			if !errors.Is(err, images.ErrUnreadable) || !errors.Is(err, c.want) {
				t.Fatalf("handle the batch: %v, want ErrUnreadable and %v", err, c.want)
			}
			if cp, err := l.store.Checkpoint(ctx, key); err != nil || cp != (eventstore.Position{}) {
				t.Errorf("checkpoint after the failed batch = %s, %v; want none", cp, err)
			}
			if n := jobs(t, l.store); n != 0 {
				t.Errorf("%d jobs enqueued by the failed batch, want none", n)
			}
			if err := handle(l.events[2:]); err != nil || jobs(t, l.store) != 1 {
				t.Errorf("handle the events after it: %v, %d jobs; want the other image's dither", err, jobs(t, l.store))
			}
		})
	}
}

func jobs(t *testing.T, store *espg.Store) int {
	t.Helper()
	var n int
	if err := store.Pool().QueryRow(context.Background(), `SELECT count(*) FROM river_job`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestInlineStopsAtUnreadableEvents: the inline processor fails a batch
// at an event this build cannot read, before the dithers after it (the
// runner then hands the batch over again from the checkpoint), rather
// than skip it; the batch without that event does the other dither.
func TestInlineStopsAtUnreadableEvents(t *testing.T) {
	for _, c := range unreadableCases {
		t.Run(c.name, func(t *testing.T) {
			l := newUnreadableLog(t, c.ev())
			sub := processors.NewInline(l.store, l.cmds, l.blobs, processors.Config{Concurrency: 1}).Subscription()
			handle := func(events []eventstore.Event) error {
				return sub.Handler(t.Context(), eventstore.Batch{Events: events,
					Checkpoint: eventstore.Checkpoint{Key: eventstore.CheckpointKey{Subscription: sub.Name}, Position: events[len(events)-1].Position}})
			}
			err := handle(l.events)
			if !errors.Is(err, images.ErrUnreadable) || !errors.Is(err, c.want) {
				t.Fatalf("handle the batch: %v, want ErrUnreadable and %v", err, c.want)
			}
			if !l.pending(t) {
				t.Error("the dither after the unreadable event was done by the failed batch")
			}
			if err := handle(l.events[2:]); err != nil || l.pending(t) {
				t.Errorf("handle the events after it: %v, pending %t; want the other dither done", err, l.pending(t))
			}
		})
	}
}

func rawEvent(typ string, v int, data string) eventstore.NewEvent {
	return eventstore.NewEvent{ID: eventstore.NewEventID(), Type: typ, SchemaVersion: v, Data: []byte(data)}
}
