package projectiontest

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/imageservice/imageservice/eventstore"
	"github.com/imageservice/imageservice/images"
	"github.com/imageservice/imageservice/projections"
)

// env is one test's backend and the log lines of its model.
type env struct {
	Backend
	logs *syncBuffer
}

// newEnv makes a fresh backend that logs into the env's buffer.
func newEnv(t *testing.T, newBackend func(t *testing.T, cfg Config) Backend) *env {
	t.Helper()
	logs := &syncBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	return &env{Backend: newBackend(t, Config{Logger: logger, RebuildBatchSize: rebuildBatch}), logs: logs}
}

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startProjector runs the projector under a runner until the returned
// function is called (or the test ends).
func (e *env) startProjector(t *testing.T) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	runner := &eventstore.Runner{Store: e.Store, LeaseTTL: 3 * time.Second, Logger: slog.New(slog.DiscardHandler)}
	sub := e.Model.Projector()
	sub.Read.MaxIdle = 50 * time.Millisecond
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = runner.Run(ctx, sub)
	}()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return stop
}

// waitFor waits, at most 20 s, for the projection to reach pos.
func (e *env) waitFor(t *testing.T, pos eventstore.Position) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := e.Model.WaitFor(ctx, pos); err != nil {
		t.Fatal(err)
	}
}

// image is a test image: its state as decided, and the last position written.
type image struct {
	state images.Image
	pos   eventstore.Position
}

var (
	t0   = time.Date(2025, 1, 2, 3, 4, 5, 678901234, time.UTC)
	keyA = strings.Repeat("a", 64)
	keyB = strings.Repeat("b", 64)
)

// apply returns a function that appends the events of a decision to the
// image's stream and folds them into its state.
func (e *env) apply(t *testing.T, img *image) func(events []images.Event, err error) {
	return func(events []images.Event, err error) { e.appendDecision(t, img, events, err) }
}

func (e *env) appendDecision(t *testing.T, img *image, events []images.Event, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	stream := images.StreamID(img.state.ID)
	if img.state.ID == uuid.Nil {
		stream = images.StreamID(events[0].(images.ImageUploaded).ImageID)
	}
	news := make([]eventstore.NewEvent, len(events))
	for i, ev := range events {
		typ, v, data, err := images.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		news[i] = eventstore.NewEvent{ID: eventstore.NewEventID(), Type: typ, SchemaVersion: v, Data: data}
	}
	res, err := e.Store.Append(context.Background(), stream, eventstore.Exact(img.state.Version), news...)
	if err != nil {
		t.Fatal(err)
	}
	for i, ev := range events {
		img.state = images.Evolve(img.state, ev, images.EventMeta{StreamVersion: img.state.Version + 1})
		img.pos = res.Positions[i]
	}
}

// upload appends a new image created at the given time with n dithers:
// the first completed and synced, the second failed, the rest pending.
func (e *env) upload(t *testing.T, at time.Time, n int) *image {
	t.Helper()
	img := &image{}
	e.apply(t, img)(images.Upload(images.UploadImage{ImageID: uuid.New(), Filename: "cat.png",
		ContentType: "image/png", ByteSize: 1234, Width: 64, Height: 48, SHA256: keyA, Owner: "tester", Now: at}))
	for i := range n {
		id := uuid.New()
		e.apply(t, img)(images.RequestDither(img.state, images.DitherRequest{DitherID: id,
			Options: images.DitherInput{Levels: 2 + i, Algorithm: "ATKINSON"}, Now: at.Add(time.Duration(i+1) * time.Second)}))
		switch i {
		case 0:
			e.apply(t, img)(images.CompleteDither(img.state, images.DitherResult{DitherID: id, ResultKey: keyB,
				ByteSize: 99, Width: 64, Height: 48, Colours: 8, DurationMs: 12, CompletedAt: at.Add(time.Minute)}))
			e.apply(t, img)(images.MarkDitherSynced(img.state, images.DitherCloudCopy{DitherID: id,
				SecureURL: "https://cloud.example/d.png", PublicID: "d"}))
		case 1:
			e.apply(t, img)(images.FailDither(img.state, images.DitherFailure{DitherID: id, Reason: "too big"}))
		}
	}
	return img
}

// remove deletes the image.
func (e *env) remove(t *testing.T, img *image) {
	t.Helper()
	e.apply(t, img)(images.Delete(img.state, images.DeleteImage{Now: t0.Add(time.Hour)}))
}

// replay reads an image's stream back from the log and folds it.
func (e *env) replay(t *testing.T, id uuid.UUID) images.Image {
	t.Helper()
	recorded, err := e.Store.ReadStream(context.Background(), images.StreamID(id), 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	var rs []images.Recorded
	for _, r := range recorded {
		ev, err := images.Unmarshal(r.Type, r.SchemaVersion, r.Data)
		if err != nil {
			t.Fatal(err)
		}
		rs = append(rs, images.Recorded{Event: ev, Meta: images.EventMeta{EventID: r.ID,
			StreamVersion: r.StreamVersion, RecordedAt: r.RecordedAt}})
	}
	return images.Replay(rs...)
}

// snapshot is the whole read model as the Reader returns it.
type snapshot struct {
	images  map[uuid.UUID]projections.Image
	dithers map[uuid.UUID]projections.Page[projections.Dither]
}

// snapshot reads the images with the given ids and their dithers.
func (e *env) snapshot(t *testing.T, ids []uuid.UUID) snapshot {
	t.Helper()
	ctx := context.Background()
	imgs, err := e.Model.ImagesByID(ctx, ids)
	if err != nil {
		t.Fatal(err)
	}
	ds, err := e.Model.DithersByImage(ctx, ids, projections.MaxPageSize)
	if err != nil {
		t.Fatal(err)
	}
	return snapshot{images: imgs, dithers: ds}
}

// checkpoint returns the projection's stored checkpoint.
func (e *env) checkpoint(t *testing.T) eventstore.Position {
	t.Helper()
	cp, err := e.Store.Checkpoint(context.Background(), eventstore.CheckpointKey{Subscription: e.Model.Name()})
	if err != nil {
		t.Fatal(err)
	}
	return cp
}

// lastPos returns the latest of the images' positions.
func lastPos(imgs ...*image) eventstore.Position {
	var p eventstore.Position
	for _, img := range imgs {
		if p.Less(img.pos) {
			p = img.pos
		}
	}
	return p
}

// ids returns the images' ids.
func ids(imgs ...*image) []uuid.UUID {
	out := make([]uuid.UUID, len(imgs))
	for i, img := range imgs {
		out[i] = img.state.ID
	}
	return out
}
