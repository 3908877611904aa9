package readcache

import (
	"context"
	"encoding/json"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/imageservice/imageservice/eventstore"
	essqlite "github.com/imageservice/imageservice/eventstore/sqlite"
	"github.com/imageservice/imageservice/images"
	"github.com/imageservice/imageservice/internal/testwait"
	"github.com/imageservice/imageservice/live"
	"github.com/imageservice/imageservice/projections"
)

// source is a read model whose answers the test sets: each call returns
// the image at the current version and checkpoint, after an optional
// gate.
type source struct {
	mu      sync.Mutex
	calls   int
	version int64
	at      eventstore.Position
	gate    chan struct{} // when set, a call waits on it
	entered chan struct{} // when set, a call says it began
}

func (s *source) ImageWithDithersAt(_ context.Context, id uuid.UUID, first int) (projections.Image, projections.Page[projections.Dither], eventstore.Position, error) {
	s.mu.Lock()
	s.calls++
	gate, entered := s.gate, s.entered
	img, at := projections.Image{ID: id, Version: s.version}, s.at
	s.mu.Unlock()
	if entered != nil {
		entered <- struct{}{}
	}
	if gate != nil {
		<-gate
	}
	page := projections.Page[projections.Dither]{Items: []projections.Dither{{ImageID: id, Seq: 1}}, Cursors: []projections.Cursor{"c"}}
	return img, page, at, nil
}

func (s *source) set(version int64, at eventstore.Position) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.version, s.at = version, at
}

func (s *source) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

type fixture struct {
	store *essqlite.Store
	hub   *live.Hub
	src   *source
	cache *Cache
}

// start runs a hub with the given buffer and a cache on a fresh SQLite
// log, and waits until the cache follows it.
func start(t *testing.T, buffer int) *fixture {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	store, err := essqlite.Open(ctx, filepath.Join(t.TempDir(), "events.db"), essqlite.Options{Synchronous: "NORMAL"})
	if err != nil {
		t.Fatal(err)
	}
	hub := live.NewHub(store, buffer)
	src := &source{}
	c := New(src, hub, store, Options{TTL: time.Hour})
	var wg sync.WaitGroup
	wg.Go(func() { _ = hub.Run(ctx) })
	wg.Go(func() { _ = c.Run(ctx) })
	t.Cleanup(func() { cancel(); wg.Wait(); store.Close() })
	eventually(t, "the cache to follow the log", c.Following)
	return &fixture{store: store, hub: hub, src: src, cache: c}
}

// seen reports whether the cache has seen the log up to pos.
func (c *Cache) seen(pos eventstore.Position) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return !c.pos.Less(pos)
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testwait.Until(t, time.Minute, what, cond)
}

// appendTo appends one event to the image's stream (or another stream)
// and returns its position.
func (f *fixture) appendTo(t *testing.T, stream string) eventstore.Position {
	t.Helper()
	res, err := f.store.Append(context.Background(), stream, eventstore.Any, eventstore.NewEvent{
		ID: eventstore.NewEventID(), Type: "Touched", SchemaVersion: 1, Data: json.RawMessage(`{}`)})
	if err != nil {
		t.Fatal(err)
	}
	return res.Positions[0]
}

// upload appends the first event of a new image, waits until the cache
// has seen it, and has the source answer version 1 as of it.
func (f *fixture) upload(t *testing.T) (uuid.UUID, eventstore.Position) {
	t.Helper()
	id := uuid.New()
	pos := f.appendTo(t, images.StreamID(id))
	eventually(t, "the cache to see the upload", func() bool { return f.cache.seen(pos) })
	f.src.set(1, pos)
	return id, pos
}

func (f *fixture) get(t *testing.T, id uuid.UUID) projections.Image {
	t.Helper()
	img, page, err := f.cache.ImageWithDithers(context.Background(), id, 10)
	if err != nil || len(page.Items) != 1 {
		t.Fatalf("ImageWithDithers = %+v, %v", page, err)
	}
	page.Items[0].Seq = 99 // a caller's change must not reach the cache
	return img
}

// An answer complete up to what the cache has seen is served from memory
// until an event of its image arrives, and then read again.
func TestServesUntilTheImageChanges(t *testing.T) {
	f := start(t, 0)
	id, pos := f.upload(t)
	f.get(t, id)
	if img := f.get(t, id); f.src.count() != 1 || img.Version != 1 {
		t.Fatalf("second read: %d source calls, version %d; want 1 call", f.src.count(), img.Version)
	}
	if _, page, _ := f.cache.ImageWithDithers(context.Background(), id, 10); page.Items[0].Seq != 1 {
		t.Fatal("a caller's change to a page reached the cache")
	}
	if other := f.get(t, uuid.New()); f.src.count() != 2 || other.Version != 1 {
		t.Fatalf("another image came from memory (%d calls)", f.src.count())
	}

	// Another image's event changes nothing for this one.
	f.appendTo(t, images.StreamID(uuid.New()))
	pos = f.appendTo(t, images.StreamID(id))
	f.src.set(2, pos)
	eventually(t, "the image's event to drop its answer", func() bool { return f.get(t, id).Version == 2 })
	calls := f.src.count()
	f.get(t, id)
	if f.src.count() != calls {
		t.Fatal("the new answer was not kept")
	}
}

// An answer read from a read model behind the log the cache has seen is
// served but not kept: it may lack events the cache will not see again.
func TestKeepsNothingBehindTheLog(t *testing.T) {
	f := start(t, 0)
	id := uuid.New()
	behind := f.appendTo(t, images.StreamID(id))
	pos := f.appendTo(t, images.StreamID(id))
	eventually(t, "the cache to see both events", func() bool { return f.cache.seen(pos) })
	f.src.set(1, behind) // the projection has folded the first event only
	f.get(t, id)
	f.get(t, id)
	if f.src.count() != 2 {
		t.Fatalf("%d source calls, want 2: an answer behind the log was kept", f.src.count())
	}
	f.src.set(2, pos) // caught up
	f.get(t, id)
	f.get(t, id)
	if f.src.count() != 3 {
		t.Fatalf("%d source calls, want 3: a caught-up answer was not kept", f.src.count())
	}
}

// An event of the image that arrives while its answer is being read
// spoils the answer: it is returned but not kept.
func TestEventDuringReadSpoilsIt(t *testing.T) {
	f := start(t, 0)
	id, _ := f.upload(t)
	gate := make(chan struct{})
	f.src.gate, f.src.entered = gate, make(chan struct{})
	done := make(chan projections.Image)
	go func() {
		img, _, _ := f.cache.ImageWithDithers(context.Background(), id, 10)
		done <- img
	}()
	<-f.src.entered // the read took its snapshot at version 1
	next := f.appendTo(t, images.StreamID(id))
	eventually(t, "the cache to see the event", func() bool { return f.cache.seen(next) })
	f.src.mu.Lock()
	f.src.gate, f.src.entered = nil, nil
	f.src.mu.Unlock()
	f.src.set(2, next)
	close(gate) // the read in flight returns its version-1 answer
	if img := <-done; img.Version != 1 {
		t.Fatalf("the read in flight returned version %d", img.Version)
	}
	if img := f.get(t, id); img.Version != 2 {
		t.Fatalf("after the event, version %d came back: the spoiled answer was kept", img.Version)
	}
}

// A feed that the hub closes (the cache fell behind) empties the cache,
// which then follows the log again.
func TestLostFeedEmptiesTheCache(t *testing.T) {
	f := start(t, 1)
	id, _ := f.upload(t)
	f.get(t, id)
	f.cache.mu.Lock()
	cached := f.cache.size
	f.cache.mu.Unlock()
	if cached == 0 {
		t.Fatal("the answer was not cached")
	}
	// Three events of other streams in one append: more than the feed's
	// buffer of one. The cache is held (as a slow consumer would be) from
	// the first event on, so that the hub surely closes its feed: the
	// cache could otherwise keep up with three events.
	batch := make([]eventstore.NewEvent, 3)
	for i := range batch {
		batch[i] = eventstore.NewEvent{ID: eventstore.NewEventID(), Type: "Touched", SchemaVersion: 1, Data: json.RawMessage(`{}`)}
	}
	res := func() eventstore.AppendResult {
		f.cache.mu.Lock()
		defer f.cache.mu.Unlock()
		res, err := f.store.Append(context.Background(), "elsewhere", eventstore.Any, batch...)
		if err != nil {
			t.Fatal(err)
		}
		eventually(t, "the hub to close the feed", func() bool { return f.hub.Subscribers() == 0 })
		return res
	}()
	eventually(t, "the cache to be emptied", func() bool {
		f.cache.mu.Lock()
		defer f.cache.mu.Unlock()
		return f.cache.size == 0
	})
	eventually(t, "the cache to follow again", func() bool { return f.cache.Following() && f.cache.seen(res.Positions[2]) })
	calls := f.src.count()
	f.src.set(1, res.Positions[2])
	f.get(t, id)
	f.get(t, id)
	if f.src.count() != calls+1 {
		t.Fatalf("%d source calls after following again, want %d", f.src.count(), calls+1)
	}
}
