// Package live fans the event log out to live subscribers (GraphQL
// subscriptions). One Hub per process follows the log from its head, so an
// event appended by any process reaches this process's subscribers; each
// subscriber has a bounded buffer, and one that falls behind is closed
// with ErrTooSlow instead of holding the others back.
package live

import (
	"context"
	"errors"
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
}

// NewHub returns a hub on the store; Run starts it.
func NewHub(store eventstore.Store, buffer int) *Hub {
	if buffer <= 0 {
		buffer = DefaultBuffer
	}
	return &Hub{store: store, buffer: buffer, subs: map[*Subscription]struct{}{}}
}

// Run follows the log from its current head until ctx ends.
func (h *Hub) Run(ctx context.Context) error {
	head, _, err := h.store.Head(ctx)
	if err != nil {
		return err
	}
	return eventstore.Follow(ctx, h.store, head, eventstore.ReadOptions{},
		func(_ context.Context, events []eventstore.Event, _ eventstore.Position) error {
			h.dispatch(events)
			return nil
		})
}

// Subscription is one subscriber's feed.
type Subscription struct {
	hub    *Hub
	stream string
	c      chan eventstore.Event
	once   sync.Once
	err    error
}

// Subscribe returns a feed of the events of one stream, or of every stream
// when stream is "". Close it when done.
func (h *Hub) Subscribe(stream string) *Subscription {
	s := &Subscription{hub: h, stream: stream, c: make(chan eventstore.Event, h.buffer)}
	h.mu.Lock()
	h.subs[s] = struct{}{}
	h.mu.Unlock()
	return s
}

// C delivers the events; it is closed when the subscription ends.
func (s *Subscription) C() <-chan eventstore.Event { return s.c }

// Err tells why C was closed: ErrTooSlow, or nil after Close.
func (s *Subscription) Err() error {
	s.hub.mu.Lock()
	defer s.hub.mu.Unlock()
	return s.err
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

// Subscribers returns how many subscriptions are open.
func (h *Hub) Subscribers() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs)
}

// dispatch hands events to subscriptions without ever waiting for one.
func (h *Hub) dispatch(events []eventstore.Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
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
