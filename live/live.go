// Package live fans the event log out to live subscribers (GraphQL
// subscriptions). One Hub per process follows the log from its head, so an
// event appended by any process reaches this process's subscribers; each
// subscriber has a bounded buffer, and one that falls behind is closed
// with ErrTooSlow instead of holding the others back.
package live

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/imageservice/imageservice/eventstore"
)

// ErrTooSlow closes a subscription whose buffer filled up.
var ErrTooSlow = errors.New("live: subscriber too slow; subscription closed")

// DefaultBuffer is a subscription's buffer, in events.
const DefaultBuffer = 256

// Hub follows the log and hands each event to the subscriptions that want it.
type Hub struct {
	store  eventstore.Store
	buffer int

	mu   sync.Mutex
	subs map[*Subscription]struct{}
	// pos is the position the hub has dispatched up to, once started is
	// set: a Run after a failed one resumes there.
	pos     eventstore.Position
	started bool
	// running is closed once the hub has fixed where it follows the log
	// from: subscriptions wait for it (see Subscribe).
	running chan struct{}
}

// NewHub returns a hub on the store; Run starts it.
func NewHub(store eventstore.Store, buffer int) *Hub {
	if buffer <= 0 {
		buffer = DefaultBuffer
	}
	return &Hub{store: store, buffer: buffer, subs: map[*Subscription]struct{}{}, running: make(chan struct{})}
}

// Run follows the log until ctx ends or reading fails: the first time
// from the log's head, and after a failure from where the last Run
// stopped, so that subscribers miss no event while the hub is restarted
// (after a database outage, say).
func (h *Hub) Run(ctx context.Context) error {
	h.mu.Lock()
	from, started := h.pos, h.started
	h.mu.Unlock()
	if !started {
		head, _, err := h.store.Head(ctx)
		if err != nil {
			return fmt.Errorf("live hub: read the log's head: %w", err)
		}
		from = head
		h.mu.Lock()
		h.pos, h.started = head, true
		h.mu.Unlock()
		close(h.running)
	}
	return eventstore.Follow(ctx, h.store, from, eventstore.ReadOptions{},
		func(_ context.Context, events []eventstore.Event, next eventstore.Position) error {
			h.dispatch(events, next)
			return nil
		})
}

// Subscription is one subscriber's feed.
type Subscription struct {
	hub    *Hub
	stream string
	seen   int64 // stream versions up to this are not delivered
	ready  bool  // seen is known; counted by Subscribers
	c      chan eventstore.Event
	once   sync.Once
	err    error
}

// Subscribe returns a feed of the events of one stream, or of every stream
// when stream is "". Close it when done.
//
// It waits until the hub runs (or ctx ends): the hub follows the log from
// its head when it starts, and an event appended before that would never
// reach a feed registered earlier. seen, when not nil, is called once the
// feed is registered, and returns the stream version that the subscriber
// already knows (an image's version, say); events up to it are not
// delivered. Because the version is read after the feed is registered, no
// later event can be missed.
func (h *Hub) Subscribe(ctx context.Context, stream string, seen func() (int64, error)) (*Subscription, error) {
	select {
	case <-h.running:
	case <-ctx.Done():
		return nil, fmt.Errorf("live: wait for the hub to run: %w", ctx.Err())
	}
	s := &Subscription{hub: h, stream: stream, c: make(chan eventstore.Event, h.buffer)}
	h.mu.Lock()
	h.subs[s] = struct{}{}
	h.mu.Unlock()
	var v int64
	if seen != nil {
		var err error
		if v, err = seen(); err != nil {
			s.Close()
			return nil, err
		}
	}
	h.mu.Lock()
	s.seen, s.ready = v, true
	h.mu.Unlock()
	return s, nil
}

// ErrClosed is what Next returns once the subscription was closed.
var ErrClosed = errors.New("live: subscription closed")

// Next returns the next event, waiting for it until ctx ends. It returns
// ErrTooSlow when the subscriber fell behind and ErrClosed after Close.
func (s *Subscription) Next(ctx context.Context) (eventstore.Event, error) {
	for {
		select {
		case <-ctx.Done():
			return eventstore.Event{}, ctx.Err()
		case e, ok := <-s.c:
			if !ok {
				return eventstore.Event{}, s.closedErr()
			}
			if s.stream != "" && e.StreamVersion <= s.seen {
				continue // recorded before the subscription began
			}
			return e, nil
		}
	}
}

func (s *Subscription) closedErr() error {
	s.hub.mu.Lock()
	defer s.hub.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	return ErrClosed
}

// Close ends the subscription and frees it.
func (s *Subscription) Close() {
	s.hub.mu.Lock()
	defer s.hub.mu.Unlock()
	s.end(nil)
}

// end closes the feed once; the hub's lock is held.
func (s *Subscription) end(err error) {
	s.once.Do(func() {
		s.err = err
		delete(s.hub.subs, s)
		close(s.c)
	})
}

// Subscribers returns how many subscriptions are open and started.
func (h *Hub) Subscribers() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for s := range h.subs {
		if s.ready {
			n++
		}
	}
	return n
}

// dispatch hands events to subscriptions without ever waiting for one,
// and records next as the position to resume after.
func (h *Hub) dispatch(events []eventstore.Event, next eventstore.Position) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.pos = next
	for _, e := range events {
		for s := range h.subs {
			if s.stream != "" && s.stream != e.StreamID {
				continue
			}
			select {
			case s.c <- e:
			default:
				s.end(ErrTooSlow)
			}
		}
	}
}
