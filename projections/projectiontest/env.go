package projectiontest

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/imageservice/imageservice/eventstore"
	"github.com/imageservice/imageservice/images"
	"github.com/imageservice/imageservice/internal/testlog"
	"github.com/imageservice/imageservice/projections"
)

// Env is one test's backend and the log lines of its model, with helpers
// that append decided events to the log and read the model. The suite's
// cases use it, and so may a backend's own tests.
type Env struct {
	Backend
	logs *testlog.Buffer
}

// NewEnv makes a fresh backend, set up to log into the Env's buffer.
func NewEnv(t *testing.T, newBackend func(t *testing.T, cfg Config) Backend) *Env {
	t.Helper()
	logs := &testlog.Buffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	return &Env{Backend: newBackend(t, Config{Logger: logger, RebuildBatchSize: rebuildBatch}), logs: logs}
}

// StartProjector runs the projector under a runner until the returned
// function is called (or the test ends).
func (e *Env) StartProjector(t *testing.T) (stop func()) {
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

// WaitFor waits, at most 20 s, for the projection to reach pos.
func (e *Env) WaitFor(t *testing.T, pos eventstore.Position) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := e.Model.WaitFor(ctx, pos); err != nil {
		t.Fatal(err)
	}
}

// Image is a test image: its state as decided, and the last position written.
type Image struct {
	State images.Image
	Pos   eventstore.Position
}

var (
	t0   = time.Date(2025, 1, 2, 3, 4, 5, 678901234, time.UTC)
	keyA = strings.Repeat("a", 64)
	keyB = strings.Repeat("b", 64)
)

// Apply returns a function that appends the events of a decision to the
// image's stream and folds them into its state.
func (e *Env) Apply(t *testing.T, img *Image) func(events []images.Event, err error) {
	return func(events []images.Event, err error) { e.AppendDecision(t, img, events, err) }
}

// AppendDecision appends a decision's events to the image's stream and
// folds them into its state; a decision that failed fails the test.
func (e *Env) AppendDecision(t *testing.T, img *Image, events []images.Event, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	stream := images.StreamID(img.State.ID)
	if img.State.ID == uuid.Nil {
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
	res, err := e.Store.Append(context.Background(), stream, eventstore.Exact(img.State.Version), news...)
	if err != nil {
		t.Fatal(err)
	}
	for i, ev := range events {
		img.State = images.Evolve(img.State, ev, images.EventMeta{StreamVersion: img.State.Version + 1})
		img.Pos = res.Positions[i]
	}
}

// Upload appends a new image created at the given time with n dithers:
// the first completed and synced, the second failed, the rest pending.
func (e *Env) Upload(t *testing.T, at time.Time, n int) *Image {
	t.Helper()
	img := &Image{}
	e.Apply(t, img)(images.Upload(images.UploadImage{ImageID: uuid.New(), Filename: "cat.png",
		ContentType: "image/png", ByteSize: 1234, Width: 64, Height: 48, SHA256: keyA, Owner: "tester", Now: at}))
	for i := range n {
		id := uuid.New()
		e.Apply(t, img)(images.RequestDither(img.State, images.DitherRequest{DitherID: id,
			Options: images.DitherInput{Levels: 2 + i, Algorithm: "ATKINSON"}, Now: at.Add(time.Duration(i+1) * time.Second)}))
		switch i {
		case 0:
			e.Apply(t, img)(images.CompleteDither(img.State, images.DitherResult{DitherID: id, ResultKey: keyB,
				ByteSize: 99, Width: 64, Height: 48, Colours: 8, DurationMs: 12, CompletedAt: at.Add(time.Minute)}))
			e.Apply(t, img)(images.MarkDitherSynced(img.State, images.DitherCloudCopy{DitherID: id,
				SecureURL: "https://cloud.example/d.png", PublicID: "d"}))
		case 1:
			e.Apply(t, img)(images.FailDither(img.State, images.DitherFailure{DitherID: id, Reason: "too big"}))
		}
	}
	return img
}

// Remove deletes the image.
func (e *Env) Remove(t *testing.T, img *Image) {
	t.Helper()
	e.Apply(t, img)(images.Delete(img.State, images.DeleteImage{Now: t0.Add(time.Hour)}))
}

// Replay reads an image's stream back from the log and folds it.
func (e *Env) Replay(t *testing.T, id uuid.UUID) images.Image {
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

// Snapshot is the whole read model as the Reader returns it.
type Snapshot struct {
	images  map[uuid.UUID]projections.Image
	dithers map[uuid.UUID]projections.Page[projections.Dither]
}

// Snapshot reads the images with the given ids and their dithers.
func (e *Env) Snapshot(t *testing.T, ids []uuid.UUID) Snapshot {
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
	return Snapshot{images: imgs, dithers: ds}
}

// Checkpoint returns the projection's stored checkpoint.
func (e *Env) Checkpoint(t *testing.T) eventstore.Position {
	t.Helper()
	cp, err := e.Store.Checkpoint(context.Background(), eventstore.CheckpointKey{Subscription: e.Model.Name()})
	if err != nil {
		t.Fatal(err)
	}
	return cp
}

// LastPos returns the latest of the images' positions.
func LastPos(imgs ...*Image) eventstore.Position {
	var p eventstore.Position
	for _, img := range imgs {
		if p.Less(img.Pos) {
			p = img.Pos
		}
	}
	return p
}

// IDs returns the images' ids.
func IDs(imgs ...*Image) []uuid.UUID {
	out := make([]uuid.UUID, len(imgs))
	for i, img := range imgs {
		out[i] = img.State.ID
	}
	return out
}
