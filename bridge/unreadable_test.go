package bridge_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/imageservice/imageservice/auth"
	"github.com/imageservice/imageservice/bridge"
	"github.com/imageservice/imageservice/eventstore"
	"github.com/imageservice/imageservice/images"
	"github.com/imageservice/imageservice/internal/testlog"
	"github.com/imageservice/imageservice/internal/testwait"
)

// TestNATSStopsAtUnreadableVersion: an ImageUploaded of a schema version
// this build does not know (a newer build wrote it) stops the real
// bridge there: nothing after it is published and the checkpoint stays
// before it, so that a newer replica publishes its IMAGE_UPLOADED.
func TestNATSStopsAtUnreadableVersion(t *testing.T) {
	w := newWorld(t)
	n := startNATS(t)
	w.image(1, false)
	logs := &testlog.Buffer{}
	b := w.runLogged(n.sink(n.url()), logs)
	w.waitCaughtUp(b)
	want, before := w.expected(), w.last()

	newer := rawEvent(images.TypeImageUploaded, images.ImageUploadedVersion+1, `{"filename": "new.png"}`)
	if _, err := w.store.Append(context.Background(), images.StreamID(uuid.New()), eventstore.NoStream, newer); err != nil {
		t.Fatal(err)
	}
	w.image(2, false)
	after := w.last()
	w.store.Notify()
	key := eventstore.CheckpointKey{Subscription: b.Name()}
	testwait.Until(t, time.Minute, "the bridge to stop at the event (or to pass it)", func() bool {
		cp, err := w.store.Checkpoint(context.Background(), key)
		return strings.Contains(logs.String(), images.ErrUnreadable.Error()) || (err == nil && !cp.Less(after))
	})
	if cp, err := w.store.Checkpoint(context.Background(), key); err != nil || cp != before {
		t.Errorf("checkpoint = %s, %v; want %s, before the unreadable event", cp, err, before)
	}
	checkNATSMessages(t, readStream(t, n.url()), want)
}

// TestNATSForwardsUnknownTypeOnEventsTopic: an event of a type this build
// does not know has no old-format message; it is published on the events
// topic and the bridge goes on.
func TestNATSForwardsUnknownTypeOnEventsTopic(t *testing.T) {
	w := newWorld(t)
	n := startNATS(t)
	id := w.image(1, false)
	rotated := rawEvent("ImageRotated", 1, `{"degrees": 90}`)
	if _, err := w.store.Append(context.Background(), images.StreamID(id), eventstore.Exact(3), rotated); err != nil {
		t.Fatal(err)
	}
	w.image(2, true)
	r := w.run(n.sink(n.url()))
	w.waitCaughtUp(r.b)
	got := readStream(t, n.url())
	checkNATSMessages(t, got, w.expected())
	found := false
	for _, m := range got {
		found = found || (m.ID == rotated.ID.String() && m.Topic == testTopics.Events)
	}
	if !found {
		t.Error("the event of an unknown type is not on the events topic")
	}
}

// TestBridgeStopsAtStateWithUnreadableEvent: DITHER_UPLOADED and
// DITHER_DELETED are mapped from the image's state before the event; when
// an earlier event of the stream is one this build cannot read, the batch
// fails rather than publish them from a state without it, whether that
// state comes from the batch (cached) or from replaying the stream.
func TestBridgeStopsAtStateWithUnreadableEvent(t *testing.T) {
	ditherID := uuid.New()
	completed := marshal(t, images.DitherCompleted{DitherID: ditherID, ResultKey: "abc"})
	deleted := marshal(t, images.ImageDeleted{})
	for _, c := range []struct {
		name        string
		prior, next eventstore.NewEvent
		want        error
	}{
		{"newer request version", rawEvent(images.TypeDitherRequested, images.DitherRequestedVersion+1,
			`{"dither_id": "`+ditherID.String()+`", "levels": 4}`), completed, images.ErrUnknownSchemaVersion},
		{"unknown type", rawEvent("DitherRequestedInBulk", 1, `{}`), deleted, images.ErrUnknownEventType},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := newWorld(t)
			id := w.image(1, false)
			if _, err := w.store.Append(context.Background(), images.StreamID(id), eventstore.Exact(3), c.prior, c.next); err != nil {
				t.Fatal(err)
			}
			var events []eventstore.Event
			var err error
			testwait.Until(t, 20*time.Second, "the five events to be readable", func() bool {
				events, err = w.store.ReadAll(context.Background(), eventstore.Position{}, 100)
				return err != nil || len(events) >= 5
			})
			if err != nil || len(events) != 5 {
				t.Fatalf("read the log: %d events, %v", len(events), err)
			}
			for _, batch := range [][]eventstore.Event{events, events[4:]} {
				sub := (&bridge.Bridge{Store: w.store, Sink: nopSink{}, Mapper: w.mapper, Logger: quietLogger()}).Subscription()
				_, err := sub.Prepare(context.Background(), batch)
				if !errors.Is(err, images.ErrUnreadable) || !errors.Is(err, c.want) {
					t.Errorf("prepare %d events: %v, want ErrUnreadable and %v", len(batch), err, c.want)
				}
			}
		})
	}
}

// runLogged runs a bridge whose runner logs to logs.
func (w *world) runLogged(sink bridge.Sink, logs *testlog.Buffer) *bridge.Bridge {
	w.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	b := &bridge.Bridge{Store: w.store, Sink: sink, Mapper: w.mapper, BatchSize: 50, Logger: log}
	r := &eventstore.Runner{Store: w.store, LeaseTTL: 3 * time.Second, Logger: log}
	done := make(chan struct{})
	go func() { defer close(done); _ = b.Run(ctx, r) }()
	w.t.Cleanup(func() { cancel(); <-done })
	return b
}

func rawEvent(typ string, v int, data string) eventstore.NewEvent {
	return eventstore.NewEvent{ID: eventstore.NewEventID(), Type: typ, SchemaVersion: v, Data: []byte(data)}
}

func marshal(t testing.TB, e images.Event) eventstore.NewEvent {
	t.Helper()
	typ, v, data, err := images.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	return eventstore.NewEvent{ID: eventstore.NewEventID(), Type: typ, SchemaVersion: v, Data: data}
}

// nopSink publishes nothing.
type nopSink struct{}

func (nopSink) Name() string                                    { return "nop" }
func (nopSink) Publish(context.Context, []bridge.Message) error { return nil }
func (nopSink) Close() error                                    { return nil }

// TestNATSLeavesAPIKeysOut: the API keys' events (they hold key hashes)
// share the log with the images' but are never published, not even one of
// a schema version this build does not know, and they do not hold the
// bridge up.
func TestNATSLeavesAPIKeysOut(t *testing.T) {
	w := newWorld(t)
	n := startNATS(t)
	ctx := context.Background()
	keys := auth.NewKeys(w.store)
	key, _, err := keys.Create(ctx, "ci", []string{auth.ScopeWrite})
	if err != nil {
		t.Fatal(err)
	}
	if err := keys.Revoke(ctx, key.ID); err != nil {
		t.Fatal(err)
	}
	newer := rawEvent(auth.TypeKeyCreated, 99, `{"id": "x", "hash": "not for the topics"}`)
	if _, err := w.store.Append(ctx, auth.Stream, eventstore.Any, newer); err != nil {
		t.Fatal(err)
	}
	w.image(1, false)
	r := w.run(n.sink(n.url()))
	w.waitCaughtUp(r.b)
	got := readStream(t, n.url())
	checkNATSMessages(t, got, w.expected())
	for _, m := range got {
		if strings.Contains(string(m.Body), key.Hash) || strings.Contains(string(m.Body), "not for the topics") {
			t.Errorf("message %s on %s carries an API key's event: %s", m.ID, m.Topic, m.Body)
		}
	}
}
