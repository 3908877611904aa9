package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/imageservice/imageservice/eventstore"
	essqlite "github.com/imageservice/imageservice/eventstore/sqlite"
	"github.com/imageservice/imageservice/images"
	"github.com/imageservice/imageservice/projections"
	"github.com/imageservice/imageservice/projections/sqlite"
)

var t0 = time.Date(2025, 1, 2, 3, 4, 5, 678901234, time.UTC)

// upload appends a new image with one dither and returns its id and the
// position of its last event.
func upload(t *testing.T, store *essqlite.Store, owner string, at time.Time) (uuid.UUID, eventstore.Position) {
	t.Helper()
	id := uuid.New()
	evs, err := images.Upload(images.UploadImage{ImageID: id, Filename: "a.png", ContentType: "image/png",
		ByteSize: 10, Width: 2, Height: 3, SHA256: fmt.Sprintf("%064d", 0), Owner: owner, Now: at,
		Dither: &images.DitherInput{Levels: 4}, DitherID: uuid.New()})
	if err != nil {
		t.Fatal(err)
	}
	news := make([]eventstore.NewEvent, len(evs))
	for i, ev := range evs {
		typ, v, data, err := images.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		news[i] = eventstore.NewEvent{ID: eventstore.NewEventID(), Type: typ, SchemaVersion: v, Data: data}
	}
	res, err := store.Append(context.Background(), images.StreamID(id), eventstore.NoStream, news...)
	if err != nil {
		t.Fatal(err)
	}
	return id, res.Positions[len(res.Positions)-1]
}

// project runs the projector until the returned function is called.
func project(t *testing.T, store *essqlite.Store, model *sqlite.ReadModel) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = model.Run(ctx, &eventstore.Runner{LeaseTTL: 3 * time.Second, Logger: slog.New(slog.DiscardHandler)})
	}()
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			cancel()
			<-done
		}
	}
	t.Cleanup(stop)
	return stop
}

func waitFor(t *testing.T, model *sqlite.ReadModel, pos eventstore.Position) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := model.WaitFor(ctx, pos); err != nil {
		t.Fatal(err)
	}
}

func checkpoint(t *testing.T, store *essqlite.Store) eventstore.Position {
	t.Helper()
	cp, err := store.Checkpoint(context.Background(), eventstore.CheckpointKey{Subscription: sqlite.DefaultName})
	if err != nil {
		t.Fatal(err)
	}
	return cp
}

func exec(t *testing.T, store *essqlite.Store, q string) {
	t.Helper()
	if err := store.InTx(context.Background(), func(tx *sql.Tx) error {
		_, err := tx.ExecContext(context.Background(), q)
		return err
	}); err != nil {
		t.Fatal(err)
	}
}

// TestRebuildFailureKeepsModel: a rebuild that fails midway (here, its
// context ends after the first batch) rolls back: the old model and the
// checkpoint are intact and the projector carries on.
func TestRebuildFailureKeepsModel(t *testing.T) {
	t.Parallel()
	store := newStore(t)
	model := sqlite.New(store, sqlite.WithRebuildBatchSize(2), sqlite.WithLogger(slog.New(slog.DiscardHandler)))
	project(t, store, model)
	var last eventstore.Position
	var all []uuid.UUID
	for i := range 5 {
		id, pos := upload(t, store, "o", t0.Add(time.Duration(i)*time.Second))
		all, last = append(all, id), pos
	}
	waitFor(t, model, last)
	before, cp := readAll(t, model, all), checkpoint(t, store)
	ctx, cancel := context.WithCancel(context.Background())
	err := model.Rebuild(ctx, func(done, _ int64, _ float64) {
		if done > 0 {
			cancel()
		}
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Rebuild = %v, want context.Canceled", err)
	}
	if after := readAll(t, model, all); !reflect.DeepEqual(after, before) || checkpoint(t, store) != cp {
		t.Errorf("a failed rebuild changed the model or the checkpoint")
	}
	id, pos := upload(t, store, "o", t0.Add(time.Hour))
	waitFor(t, model, pos)
	if _, err := model.Image(context.Background(), id); err != nil {
		t.Errorf("projector after a failed rebuild: %v", err)
	}
}

// readAll returns the images and their dithers.
func readAll(t *testing.T, model *sqlite.ReadModel, ids []uuid.UUID) [2]any {
	t.Helper()
	imgs, err := model.ImagesByID(context.Background(), ids)
	if err != nil {
		t.Fatal(err)
	}
	ds, err := model.DithersByImage(context.Background(), ids, projections.MaxPageSize)
	if err != nil {
		t.Fatal(err)
	}
	if len(imgs) != len(ids) {
		t.Fatalf("%d images of %d", len(imgs), len(ids))
	}
	return [2]any{imgs, ds}
}

// TestConcurrentRebuilds: rebuilds run one after the other, under a live
// projector, and each ends with the complete model.
func TestConcurrentRebuilds(t *testing.T) {
	t.Parallel()
	store := newStore(t)
	model := sqlite.New(store, sqlite.WithRebuildBatchSize(3), sqlite.WithLogger(slog.New(slog.DiscardHandler)))
	project(t, store, model)
	var last eventstore.Position
	var all []uuid.UUID
	for i := range 8 {
		id, pos := upload(t, store, "o", t0.Add(time.Duration(i)*time.Second))
		all, last = append(all, id), pos
	}
	waitFor(t, model, last)
	before := readAll(t, model, all)
	errs := make(chan error, 3)
	for range 3 {
		go func() { errs <- model.Rebuild(context.Background(), nil) }()
	}
	for range 3 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if after := readAll(t, model, all); !reflect.DeepEqual(after, before) {
		t.Errorf("model after concurrent rebuilds differs")
	}
	id, pos := upload(t, store, "o", t0.Add(time.Hour))
	waitFor(t, model, pos)
	if _, err := model.Image(context.Background(), id); err != nil {
		t.Errorf("projector after rebuilds: %v", err)
	}
}

// TestFailedBatchKeepsCheckpoint: a batch whose writes fail is rolled back
// with its checkpoint, and applied once the cause is gone.
func TestFailedBatchKeepsCheckpoint(t *testing.T) {
	t.Parallel()
	store := newStore(t)
	model := sqlite.New(store, sqlite.WithLogger(slog.New(slog.DiscardHandler)))
	exec(t, store, `CREATE TRIGGER no_poison BEFORE INSERT ON image_view WHEN NEW.owner = 'poison'
BEGIN SELECT RAISE(ABORT, 'poison'); END`)
	project(t, store, model)
	_, good := upload(t, store, "o", t0)
	waitFor(t, model, good)
	upload(t, store, "poison", t0)
	later, laterPos := upload(t, store, "o", t0.Add(time.Second))
	for range 5 {
		time.Sleep(100 * time.Millisecond)
		if cp := checkpoint(t, store); cp != good {
			t.Fatalf("checkpoint moved to %s past a failed batch (want %s)", cp, good)
		}
		if _, err := model.Image(context.Background(), later); !errors.Is(err, projections.ErrNotFound) {
			t.Fatalf("image of a failed batch is visible: %v", err)
		}
	}
	exec(t, store, `DROP TRIGGER no_poison`)
	waitFor(t, model, laterPos)
}

// TestResumesAfterReopen: the model and its checkpoint persist in the
// file; a projector started on the reopened file applies only the events
// appended since.
func TestResumesAfterReopen(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "events.db")
	open := func() (*essqlite.Store, *sqlite.ReadModel) {
		store, err := essqlite.Open(context.Background(), path, essqlite.Options{Synchronous: "NORMAL"})
		if err != nil {
			t.Fatal(err)
		}
		if err := sqlite.Migrate(context.Background(), store); err != nil {
			t.Fatal(err)
		}
		return store, sqlite.New(store, sqlite.WithLogger(slog.New(slog.DiscardHandler)))
	}
	store, model := open()
	stop := project(t, store, model)
	a, pos := upload(t, store, "o", t0)
	waitFor(t, model, pos)
	stop()
	b, pos := upload(t, store, "o", t0.Add(time.Second))
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	store, model = open()
	t.Cleanup(func() { _ = store.Close() })
	project(t, store, model)
	waitFor(t, model, pos)
	imgs, err := model.ImagesByID(context.Background(), []uuid.UUID{a, b})
	if err != nil || len(imgs) != 2 || imgs[a].Version != 2 || imgs[b].Version != 2 || imgs[a].DitherCount != 1 {
		t.Errorf("after reopen: %+v, %v", imgs, err)
	}
}
