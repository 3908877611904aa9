package bridge_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/imageservice/imageservice/blobstore"
	blobpg "github.com/imageservice/imageservice/blobstore/postgres"
	"github.com/imageservice/imageservice/bridge"
	"github.com/imageservice/imageservice/commands"
	"github.com/imageservice/imageservice/eventstore"
	espg "github.com/imageservice/imageservice/eventstore/postgres"
	"github.com/imageservice/imageservice/images"
	"github.com/imageservice/imageservice/internal/teststores"
)

// testTopics are the topics every integration test publishes to.
var testTopics = bridge.Topics{Image: "images", Dither: "dithers", Events: "imageservice.events"}

// world is a migrated fresh schema with a command service and a blob
// server, so that the URLs in messages can be fetched.
type world struct {
	t      testing.TB
	store  *espg.Store
	blobs  *blobpg.Store
	cmds   *commands.Service
	mapper bridge.Mapper
}

func newWorld(t testing.TB) *world {
	t.Helper()
	pg := teststores.NewPostgres(t, espg.Options{Logger: quietLogger()})
	store, blobs := pg.Store, pg.Blobs
	mux := http.NewServeMux()
	mux.Handle("/blobs/", http.StripPrefix("/blobs/", blobstore.Handler(blobs, blobstore.HandlerOptions{})))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &world{t: t, store: store, blobs: blobs,
		cmds:   commands.New(commands.Postgres{Store: store, Blobs: blobs}, commands.Options{}),
		mapper: bridge.Mapper{PublicURL: srv.URL, Source: "/test", Topics: testTopics}}
}

// quietLogger drops the logs of retried failures that tests provoke.
func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{}, &slog.HandlerOptions{Level: slog.LevelError + 4}))
}

type testWriter struct{}

func (testWriter) Write(p []byte) (int, error) { return len(p), nil }

// pngBytes is a small distinct PNG per seed.
func pngBytes(seed int) []byte {
	img := image.NewRGBA(image.Rect(0, 0, 4, 4))
	for i := range img.Pix {
		img.Pix[i] = byte(seed*31 + i)
	}
	img.Set(0, 0, color.RGBA{byte(seed), byte(seed >> 8), 1, 255})
	var buf bytes.Buffer
	_ = png.Encode(&buf, img)
	return buf.Bytes()
}

// workload uploads n images, each with a dither that completes, and
// deletes every third image: every old message type appears.
func (w *world) workload(seed, n int) {
	w.t.Helper()
	for i := range n {
		w.image(seed+i, i%3 == 2)
	}
}

// image uploads one image, requests and completes a dither, and maybe deletes it.
func (w *world) image(seed int, del bool) uuid.UUID {
	w.t.Helper()
	ctx := context.Background()
	res, err := w.cmds.Upload(ctx, commands.UploadInput{Body: bytes.NewReader(pngBytes(seed)), Filename: fmt.Sprintf("pic-%d.png", seed), NoDither: true})
	if err != nil {
		w.t.Fatal(err)
	}
	id := res.Image.ID
	_, ditherID, err := w.cmds.RequestDither(ctx, commands.DitherInput{ImageID: id, Options: images.DitherInput{Levels: 3}})
	if err != nil {
		w.t.Fatal(err)
	}
	out, err := w.blobs.Put(ctx, "image/png", bytes.NewReader(pngBytes(seed+1_000_000)))
	if err != nil {
		w.t.Fatal(err)
	}
	if _, err := w.cmds.CompleteDither(ctx, id, images.DitherResult{DitherID: ditherID, ResultKey: out.Key, ByteSize: out.Size, Width: 4, Height: 4, Colours: 8}, eventstore.Metadata{}); err != nil {
		w.t.Fatal(err)
	}
	if del {
		if _, err := w.cmds.Delete(ctx, id, eventstore.Metadata{}); err != nil {
			w.t.Fatal(err)
		}
	}
	return id
}

// expected returns the messages the log should produce, in log order.
func (w *world) expected() []bridge.Message {
	w.t.Helper()
	ctx := context.Background()
	events, err := w.store.ReadAll(ctx, eventstore.Position{}, 1_000_000)
	if err != nil {
		w.t.Fatal(err)
	}
	states := map[string]images.Image{}
	var out []bridge.Message
	for _, e := range events {
		msgs, err := w.mapper.Map(e, states[e.StreamID])
		if err != nil {
			w.t.Fatal(err)
		}
		out = append(out, msgs...)
		if ev, err := images.Unmarshal(e.Type, e.SchemaVersion, e.Data); err == nil {
			states[e.StreamID] = images.Evolve(states[e.StreamID], ev, images.EventMeta{EventID: e.ID, StreamVersion: e.StreamVersion, RecordedAt: e.RecordedAt})
		}
	}
	return out
}

// running is a bridge running under a runner until stop.
type running struct {
	b    *bridge.Bridge
	stop func()
	done chan struct{}
}

// run starts a bridge on the sink.
func (w *world) run(sink bridge.Sink) *running {
	w.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	b := &bridge.Bridge{Store: w.store, Sink: sink, Mapper: w.mapper, BatchSize: 50,
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond, Logger: quietLogger()}
	r := &eventstore.Runner{Store: w.store, LeaseTTL: 3 * time.Second, Logger: quietLogger()}
	done := make(chan struct{})
	go func() { defer close(done); _ = b.Run(ctx, r) }()
	rn := &running{b: b, done: done}
	var once sync.Once
	rn.stop = func() { once.Do(func() { cancel(); <-done }) }
	w.t.Cleanup(rn.stop)
	return rn
}

// waitCaughtUp waits until the bridge's checkpoint has passed the last
// event committed so far. Head and lag alone would not do: while another
// test's transaction is open anywhere in the database, the newest events
// are not readable yet, and a bridge can look caught up without them.
func (w *world) waitCaughtUp(b *bridge.Bridge) {
	w.t.Helper()
	last := w.last()
	waitFor(w.t, "the bridge to catch up", func() (bool, error) {
		cp, err := w.store.Checkpoint(context.Background(), eventstore.CheckpointKey{Subscription: b.Name()})
		return !cp.Less(last), err
	})
}

// last returns the position of the last event committed so far, readable
// or not yet.
func (w *world) last() eventstore.Position {
	w.t.Helper()
	var last eventstore.Position
	err := w.store.Pool().QueryRow(context.Background(), `SELECT transaction_id::text::bigint, global_position
		FROM events ORDER BY transaction_id DESC, global_position DESC LIMIT 1`).Scan(&last.TransactionID, &last.Global)
	if err != nil {
		w.t.Fatal(err)
	}
	return last
}

// waitFor polls cond until it holds, failing the test after a deadline.
func waitFor(t testing.TB, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var last error
	for time.Now().Before(deadline) {
		ok, err := cond()
		if ok && err == nil {
			return
		}
		last = err
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s (last error: %v)", what, last)
}

// killAfterPublish is a Sink whose first successful publish is followed
// by a crash before the checkpoint: it stops the bridge and fails.
type killAfterPublish struct {
	bridge.Sink
	mu        sync.Mutex
	kill      func()
	killed    bool
	published []bridge.Message
}

func (k *killAfterPublish) Publish(ctx context.Context, msgs []bridge.Message) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.killed {
		return errors.New("dead")
	}
	if err := k.Sink.Publish(ctx, msgs); err != nil {
		return err
	}
	k.killed, k.published = true, msgs
	go k.kill()
	return errors.New("killed between publish and checkpoint")
}

// checkSame fails unless got and want are the same messages in order.
func checkSame(t testing.TB, got, want []bridge.Message) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d messages, want %d", len(got), len(want))
	}
	for i := range want {
		if err := sameMessageErr(got[i], want[i]); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
}

func sameMessageErr(got, want bridge.Message) error {
	if got.Topic != want.Topic || got.Key != want.Key || !bytes.Equal(got.Body, want.Body) {
		return fmt.Errorf("got %s %s %s, want %s %s %s", got.Topic, got.Key, got.Body, want.Topic, want.Key, want.Body)
	}
	for _, h := range want.Headers {
		if v := got.Header(h.Key); v != h.Value {
			return fmt.Errorf("header %s = %q, want %q (message %s)", h.Key, v, h.Value, want.Body)
		}
	}
	return nil
}

// slowEvent is an event to append in a transaction held open.
type slowEvent struct {
	stream string
	event  eventstore.NewEvent
}

// slowUpload is the ImageUploaded of a new image, appended by hand.
func slowUpload(t testing.TB) slowEvent {
	t.Helper()
	id := uuid.New()
	typ, sv, data, err := images.Marshal(images.ImageUploaded{ImageID: id, Filename: "slow.png",
		ContentType: "image/png", SHA256: "0000000000000000000000000000000000000000000000000000000000000000"})
	if err != nil {
		t.Fatal(err)
	}
	return slowEvent{stream: images.StreamID(id),
		event: eventstore.NewEvent{ID: eventstore.NewEventID(), Type: typ, SchemaVersion: sv, Data: data}}
}
