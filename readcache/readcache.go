// Package readcache keeps the answers to image(id) with its first dithers
// in memory, and forgets each one as soon as the log says it changed.
//
// The event log makes exact invalidation possible: every change to an
// image is an event of its stream, and this process's live hub sees every
// event in the log's order. An answer is cached only when it is known to
// hold every event of its image up to the position the cache has seen,
// and it is dropped when the next event of its image arrives. The rules:
//
//   - The read model returns, with the rows, its checkpoint as of the same
//     snapshot (Source). An answer read while the cache had seen the log up
//     to p0 is kept only if that checkpoint is at or after p0: the rows hold
//     every event up to p0.
//   - An event of the image that arrives while the answer is being read
//     makes the answer unfit to keep (it may or may not hold it).
//   - An event of the image drops its cached answers.
//   - While the cache is not following the log (before Run, between a
//     lost feed and its replacement) nothing is served from or added to
//     it, and a lost feed empties it.
//   - Every answer expires after TTL regardless, a bound on any staleness
//     the rules above could miss.
//
// The read model is eventually consistent already: a cached answer is
// never older than what the read model could have answered.
package readcache

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/imageservice/imageservice/eventstore"
	"github.com/imageservice/imageservice/images"
	"github.com/imageservice/imageservice/live"
	"github.com/imageservice/imageservice/projections"
)

// Source is a read model that returns an image, its first dithers and its
// checkpoint from one snapshot.
type Source interface {
	ImageWithDithersAt(ctx context.Context, id uuid.UUID, first int) (projections.Image, projections.Page[projections.Dither], eventstore.Position, error)
}

// Defaults of Options.
const (
	DefaultTTL        = 30 * time.Second
	DefaultMaxEntries = 10_000
)

// Options tune a Cache.
type Options struct {
	// TTL bounds how long an answer is served (default DefaultTTL).
	TTL time.Duration
	// MaxEntries bounds the answers kept (default DefaultMaxEntries);
	// beyond it, arbitrary ones are dropped.
	MaxEntries int
	// Logger receives the feed's interruptions (default slog.Default()).
	Logger *slog.Logger
}

// Cache answers ImageWithDithers from memory when it can, and from its
// Source otherwise. Run keeps it following the log; it is safe for
// concurrent use.
type Cache struct {
	src   Source
	hub   *live.Hub
	store eventstore.Store
	opts  Options

	mu      sync.RWMutex        // read-locked on a hit, locked for every change
	on      bool                // following the log: pos is meaningful
	pos     eventstore.Position // the log as far as the cache has seen it
	entries map[uuid.UUID]map[int]entry
	size    int
	pending map[uuid.UUID][]*fill
	hits    atomic.Uint64
	misses  atomic.Uint64
}

type entry struct {
	img  projections.Image
	page projections.Page[projections.Dither]
	at   time.Time
}

// fill is a read in flight; an event of its image makes it dirty.
type fill struct{ dirty bool }

// New returns a cache of src's answers kept fresh by hub, which follows
// store. Nothing is cached until Run follows the log.
func New(src Source, hub *live.Hub, store eventstore.Store, opts Options) *Cache {
	if opts.TTL <= 0 {
		opts.TTL = DefaultTTL
	}
	if opts.MaxEntries <= 0 {
		opts.MaxEntries = DefaultMaxEntries
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Cache{src: src, hub: hub, store: store, opts: opts,
		entries: map[uuid.UUID]map[int]entry{}, pending: map[uuid.UUID][]*fill{}}
}

// ImageWithDithers returns the image and the first page of its dithers,
// from memory when a fresh answer is there.
func (c *Cache) ImageWithDithers(ctx context.Context, id uuid.UUID, first int) (projections.Image, projections.Page[projections.Dither], error) {
	if e, ok := c.lookup(id, first); ok {
		return e.img, clonePage(e.page), nil
	}
	f, p0 := c.begin(id)
	img, page, at, err := c.src.ImageWithDithersAt(ctx, id, first)
	c.end(id, first, f, p0, err == nil && !at.Less(p0), entry{img: img, page: page, at: time.Now()})
	return img, page, err
}

// lookup returns a fresh cached answer.
func (c *Cache) lookup(id uuid.UUID, first int) (entry, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	e, ok := c.entries[id][first]
	if ok && c.on && time.Since(e.at) < c.opts.TTL {
		c.hits.Add(1)
		return e, true
	}
	c.misses.Add(1)
	return entry{}, false
}

// begin registers a read of id, when the cache follows the log, and
// returns it with the position the log is known up to.
func (c *Cache) begin(id uuid.UUID) (*fill, eventstore.Position) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.on {
		return nil, eventstore.Position{}
	}
	f := &fill{}
	c.pending[id] = append(c.pending[id], f)
	return f, c.pos
}

// end unregisters a read and keeps a copy of its answer when it is fit
// to keep: complete up to p0 (complete), and no event of the image came
// meanwhile.
func (c *Cache) end(id uuid.UUID, first int, f *fill, p0 eventstore.Position, complete bool, e entry) {
	if f == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	fills := slices.DeleteFunc(c.pending[id], func(g *fill) bool { return g == f })
	if len(fills) == 0 {
		delete(c.pending, id)
	} else {
		c.pending[id] = fills
	}
	if !complete || f.dirty || !c.on {
		return
	}
	if c.size >= c.opts.MaxEntries {
		c.evictOne()
	}
	byFirst := c.entries[id]
	if byFirst == nil {
		byFirst = map[int]entry{}
		c.entries[id] = byFirst
	}
	if _, ok := byFirst[first]; !ok {
		c.size++
	}
	e.page = clonePage(e.page)
	byFirst[first] = e
}

// evictOne drops the answers of one image; the lock is held.
func (c *Cache) evictOne() {
	for id, byFirst := range c.entries {
		c.size -= len(byFirst)
		delete(c.entries, id)
		return
	}
}

// Run follows the log through the hub until ctx ends, dropping the
// answers of each image that an event changes. A feed the hub closes (a
// cache that fell behind) empties the cache, which then follows again.
//
// Following again waits 100 ms, doubling up to 30 s while the feed keeps
// failing at once (the database is down, say), so that an outage does not
// flood the log.
func (c *Cache) Run(ctx context.Context) error {
	delay := minRefollow
	for ctx.Err() == nil {
		start := time.Now()
		err := c.follow(ctx)
		c.reset()
		if ctx.Err() != nil {
			break
		}
		if time.Since(start) > maxRefollow {
			delay = minRefollow // it had been following for a while
		}
		c.opts.Logger.Warn("readcache: lost the log's feed; emptied, following again", "err", err, "in", delay)
		t := time.NewTimer(delay)
		delay = min(2*delay, maxRefollow)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
	}
	return ctx.Err()
}

// Bounds of the wait before following the log again after losing it.
const (
	minRefollow = 100 * time.Millisecond
	maxRefollow = 30 * time.Second
)

// follow subscribes to every event and applies them until the feed ends.
func (c *Cache) follow(ctx context.Context) error {
	sub, err := c.hub.Subscribe(ctx, "", nil)
	if err != nil {
		return err
	}
	defer sub.Close()
	// Read after subscribing: every event past head reaches the feed, and
	// events the hub dispatches up to head only make reads conservative.
	head, _, err := c.store.Head(ctx)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.on, c.pos = true, head
	c.mu.Unlock()
	for {
		e, err := sub.Next(ctx)
		if err != nil {
			return err
		}
		c.apply(e)
	}
}

// apply drops the answers of the event's image and spoils reads of it in
// flight.
func (c *Cache) apply(e eventstore.Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pos.Less(e.Position) {
		c.pos = e.Position
	}
	id, err := images.ParseStreamID(e.StreamID)
	if err != nil {
		return // not an image's stream
	}
	c.size -= len(c.entries[id])
	delete(c.entries, id)
	for _, f := range c.pending[id] {
		f.dirty = true
	}
}

// reset stops serving and keeping answers until the log is followed again.
func (c *Cache) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.on = false
	c.entries, c.size = map[uuid.UUID]map[int]entry{}, 0
	for _, fills := range c.pending {
		for _, f := range fills {
			f.dirty = true
		}
	}
}

// Following reports whether the cache follows the log now (and so holds
// one of the hub's subscriptions).
func (c *Cache) Following() bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.on
}

// Stats reports how many answers came from memory (hits) and from the
// source (misses) so far.
func (c *Cache) Stats() (hits, misses uint64) {
	return c.hits.Load(), c.misses.Load()
}

// clonePage copies a page's slices, so that no caller shares a cached one.
func clonePage(p projections.Page[projections.Dither]) projections.Page[projections.Dither] {
	p.Items = slices.Clone(p.Items)
	p.Cursors = slices.Clone(p.Cursors)
	return p
}
