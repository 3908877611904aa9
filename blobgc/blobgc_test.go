package blobgc_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"image"
	"image/color"
	"image/png"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/imageservice/imageservice/blobgc"
	"github.com/imageservice/imageservice/blobstore"
	blobfs "github.com/imageservice/imageservice/blobstore/fs"
	"github.com/imageservice/imageservice/bridge"
	"github.com/imageservice/imageservice/commands"
	"github.com/imageservice/imageservice/eventstore"
	essqlite "github.com/imageservice/imageservice/eventstore/sqlite"
	"github.com/imageservice/imageservice/images"
	"github.com/imageservice/imageservice/internal/teststores"
	projsqlite "github.com/imageservice/imageservice/projections/sqlite"
)

// stack is the embedded default's storage: SQLite log and read model,
// blobs on files, and the command service on them.
type stack struct {
	store *essqlite.Store
	reads *projsqlite.ReadModel
	blobs *blobfs.Store
	cmds  *commands.Service
}

func newStack(t *testing.T) *stack {
	t.Helper()
	ctx := context.Background()
	lite := teststores.NewSQLite(t)
	store, blobs := lite.Store, lite.Blobs
	if err := projsqlite.Migrate(ctx, store); err != nil {
		t.Fatal(err)
	}
	return &stack{store: store, reads: projsqlite.New(store), blobs: blobs,
		cmds: commands.New(commands.SQLite{Store: store, Blobs: blobs}, commands.Options{})}
}

// runProjector runs the read model's projector until the test ends.
func (s *stack) runProjector(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = s.reads.Run(ctx, &eventstore.Runner{Store: s.store}) })
	t.Cleanup(func() { cancel(); wg.Wait() })
}

// later is the blob store's clock one retention period ahead: a sweep on
// it has for cutoff the moment it reads the clock.
func (s *stack) later(ctx context.Context) (time.Time, error) {
	now, err := s.blobs.Now(ctx)
	return now.Add(blobgc.MinRetention), err
}

func (s *stack) sweeper(t *testing.T, opts blobgc.Options) *blobgc.Sweeper {
	t.Helper()
	opts.Store, opts.Blobs, opts.Users, opts.WaitFor = s.store, s.blobs, s.reads, s.reads.WaitFor
	opts.Retention = blobgc.MinRetention
	if opts.Now == nil {
		opts.Now = s.later
	}
	sw, err := blobgc.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return sw
}

// upload uploads a distinct PNG (seed picks it) and returns the image.
func (s *stack) upload(t *testing.T, seed uint8) images.Image {
	t.Helper()
	res, err := s.cmds.Upload(context.Background(), commands.UploadInput{Body: bytes.NewReader(pngBytes(seed)), Filename: "a.png", NoDither: true})
	if err != nil {
		t.Fatal(err)
	}
	return res.Image
}

func (s *stack) remove(t *testing.T, id uuid.UUID) {
	t.Helper()
	if _, err := s.cmds.Delete(context.Background(), id, eventstore.Metadata{}); err != nil {
		t.Fatal(err)
	}
}

// stored reports whether the blob is in the store.
func (s *stack) stored(t *testing.T, key string) bool {
	t.Helper()
	_, err := s.blobs.Stat(context.Background(), key)
	if err != nil && !errors.Is(err, blobstore.ErrNotFound) {
		t.Fatal(err)
	}
	return err == nil
}

func pngBytes(seed uint8) []byte {
	img := image.NewNRGBA(image.Rect(0, 0, 4, 4))
	img.Set(0, 0, color.NRGBA{seed, 1, 2, 255})
	var b bytes.Buffer
	_ = png.Encode(&b, img)
	return b.Bytes()
}

// TestSweepPurgesWhatNoLiveImageUses: a deleted image's original goes, and
// so does an orphan; an original that a live image shares stays. The
// purged keys are recorded on the sweeper's stream, which nothing
// mistakes for an image's.
func TestSweepPurgesWhatNoLiveImageUses(t *testing.T) {
	s := newStack(t)
	s.runProjector(t)
	ctx := context.Background()
	a, shared, gone := s.upload(t, 1), s.upload(t, 1), s.upload(t, 2)
	orphan, err := s.blobs.Put(ctx, "text/plain", bytes.NewReader([]byte("an upload that failed to append")))
	if err != nil {
		t.Fatal(err)
	}
	s.remove(t, a.ID)
	s.remove(t, gone.ID)

	r, err := s.sweeper(t, blobgc.Options{}).Sweep(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if r.Candidates != 3 || r.InUse != 1 || r.Purged != 2 || r.Bytes != gone.ByteSize+orphan.Size {
		t.Errorf("report %+v", r)
	}
	if !s.stored(t, shared.SHA256) || s.stored(t, gone.SHA256) || s.stored(t, orphan.Key) {
		t.Errorf("stored after the sweep: shared %t, deleted image's %t, orphan %t",
			s.stored(t, shared.SHA256), s.stored(t, gone.SHA256), s.stored(t, orphan.Key))
	}
	checkTrail(t, s.store, r, []string{gone.SHA256, orphan.Key})

	again, err := s.sweeper(t, blobgc.Options{}).Sweep(ctx)
	if err != nil || again.Candidates != 1 || again.Purged != 0 {
		t.Fatalf("second sweep: %+v, %v", again, err)
	}
}

// checkTrail checks the sweeper's stream: the marker, then the purged
// keys; and that the bridge publishes none of it.
func checkTrail(t *testing.T, store eventstore.Store, r blobgc.Report, keys []string) {
	t.Helper()
	evs, err := store.ReadStream(context.Background(), blobgc.Stream, 0, 10)
	if err != nil || len(evs) != 2 || evs[0].Type != blobgc.TypeSweepStarted || evs[1].Type != blobgc.TypeBlobsPurged {
		t.Fatalf("stream %s: %d events, %v", blobgc.Stream, len(evs), err)
	}
	var started blobgc.SweepStarted
	var purged blobgc.BlobsPurged
	if json.Unmarshal(evs[0].Data, &started) != nil || !started.Cutoff.Equal(r.Cutoff) {
		t.Errorf("%s: %s", evs[0].Type, evs[0].Data)
	}
	slices.Sort(keys)
	if json.Unmarshal(evs[1].Data, &purged) != nil || !slices.Equal(purged.Keys, keys) || purged.Bytes != r.Bytes {
		t.Errorf("%s: %s, want keys %v", evs[1].Type, evs[1].Data, keys)
	}
	for _, e := range evs {
		if msgs, err := (bridge.Mapper{}).Map(e, images.Image{}); len(msgs) != 0 || err != nil {
			t.Errorf("the bridge maps %s to %d messages, %v", e.Type, len(msgs), err)
		}
	}
}

// TestSweepWaitsForTheReadModel: while the read model has not folded in an
// upload, the image looks unused; the sweep waits for it rather than
// purging, and gives up when it does not catch up.
func TestSweepWaitsForTheReadModel(t *testing.T) {
	s := newStack(t)
	ctx := context.Background()
	img := s.upload(t, 3) // not projected: no projector runs yet
	_, err := s.sweeper(t, blobgc.Options{WaitTimeout: 50 * time.Millisecond}).Sweep(ctx)
	if !s.stored(t, img.SHA256) {
		t.Fatal("a live image's original was purged while the read model was behind")
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("sweep with the read model behind: %v", err)
	}
	s.runProjector(t)
	r, err := s.sweeper(t, blobgc.Options{}).Sweep(ctx)
	if err != nil || r.InUse != 1 || r.Purged != 0 || !s.stored(t, img.SHA256) {
		t.Fatalf("sweep once caught up: %+v, %v; stored %t", r, err, s.stored(t, img.SHA256))
	}
}

// TestOneSweepPerIntervalAcrossReplicas: the lease lets one replica sweep,
// and is kept until the next interval, by the sweeper and from the others.
func TestOneSweepPerIntervalAcrossReplicas(t *testing.T) {
	s := newStack(t)
	s.runProjector(t)
	ctx := context.Background()
	s.upload(t, 4) // a candidate, so that a sweep marks its start
	var mu sync.Mutex
	sweeps := 0
	observe := func(int, int64, error) { mu.Lock(); sweeps++; mu.Unlock() }
	a := s.sweeper(t, blobgc.Options{Holder: "a", Interval: time.Hour, Observe: observe})
	b := s.sweeper(t, blobgc.Options{Holder: "b", Interval: time.Hour, Observe: observe})
	a.TryOnce(ctx)
	b.TryOnce(ctx)
	a.TryOnce(ctx)
	evs, err := s.store.ReadStream(ctx, blobgc.Stream, 0, 10)
	if err != nil || len(evs) != 1 || sweeps != 1 {
		t.Fatalf("%d sweeps observed, %d events on %s (%v); want one sweep", sweeps, len(evs), blobgc.Stream, err)
	}
}

// TestSweepWithoutCandidatesWritesNothing: a sweep that finds no blob
// last put before its cutoff appends no marker (an idle service does not
// grow its log) and does not wait for the read model.
func TestSweepWithoutCandidatesWritesNothing(t *testing.T) {
	s := newStack(t)
	ctx := context.Background()
	img := s.upload(t, 5) // not projected: a wait for the read model would time out
	r, err := s.sweeper(t, blobgc.Options{Now: s.blobs.Now, WaitTimeout: time.Millisecond}).Sweep(ctx)
	if err != nil || r.Candidates != 0 || r.Purged != 0 || !s.stored(t, img.SHA256) {
		t.Fatalf("sweep without candidates: %+v, %v", r, err)
	}
	if evs, err := s.store.ReadStream(ctx, blobgc.Stream, 0, 10); err != nil || len(evs) != 0 {
		t.Fatalf("%d events on %s (%v), want none", len(evs), blobgc.Stream, err)
	}
}

func TestNewRefusesShortRetentionOrInterval(t *testing.T) {
	s := newStack(t)
	for _, o := range []struct{ retention, interval time.Duration }{
		{blobgc.MinRetention - time.Second, 0},
		{blobgc.MinRetention, blobgc.MinInterval - time.Second},
		{blobgc.MinRetention, -time.Hour},
	} {
		_, err := blobgc.New(blobgc.Options{Store: s.store, Blobs: s.blobs, Users: s.reads, WaitFor: s.reads.WaitFor,
			Retention: o.retention, Interval: o.interval})
		if err == nil {
			t.Errorf("retention %s and interval %s accepted", o.retention, o.interval)
		}
	}
	if _, err := blobgc.New(blobgc.Options{Store: s.store, Blobs: s.blobs, Users: s.reads, WaitFor: s.reads.WaitFor,
		Retention: blobgc.MinRetention, Interval: blobgc.MinInterval}); err != nil {
		t.Errorf("the minimums refused: %v", err)
	}
}
