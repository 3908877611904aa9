package graph

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"golang.org/x/sync/singleflight"

	"github.com/google/uuid"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/imageservice/imageservice/commands"
	"github.com/imageservice/imageservice/eventstore"
	"github.com/imageservice/imageservice/graph/model"
	"github.com/imageservice/imageservice/images"
	"github.com/imageservice/imageservice/live"
	"github.com/imageservice/imageservice/projections"
)

// MaxSubscriptionsPerConnection bounds the subscriptions one websocket
// may hold open at once: each costs goroutines and a buffer of events.
const MaxSubscriptionsPerConnection = 100

// slots counts the subscriptions open on one websocket.
type slots struct{ open atomic.Int64 }

type slotsKey struct{}

// withSlots gives a websocket's context its count of subscriptions.
func withSlots(ctx context.Context) context.Context {
	return context.WithValue(ctx, slotsKey{}, &slots{})
}

// takeSlot counts a subscription opened on the websocket of ctx and
// returns what ends it, or an error when the websocket holds as many as
// it may. Outside a websocket (an event stream holds one subscription)
// nothing is counted.
func takeSlot(ctx context.Context) (release func(), err error) {
	s, ok := ctx.Value(slotsKey{}).(*slots)
	if !ok {
		return func() {}, nil
	}
	if s.open.Add(1) > MaxSubscriptionsPerConnection {
		s.open.Add(-1)
		return nil, &gqlerror.Error{Message: fmt.Sprintf("a connection may hold at most %d subscriptions", MaxSubscriptionsPerConnection),
			Extensions: map[string]any{"code": "TOO_MANY_SUBSCRIPTIONS"}}
	}
	var once sync.Once
	return func() { once.Do(func() { s.open.Add(-1) }) }, nil
}

// subscribeImage checks an image id argument and opens a live feed of that
// image's events after its current version, or of every image's events
// when id is nil; the feed holds one of the connection's slots until it
// is closed.
func (r *Resolver) subscribeImage(ctx context.Context, id *string) (*feed, error) {
	release, err := takeSlot(ctx)
	if err != nil {
		return nil, err
	}
	sub, err := r.openFeed(ctx, id)
	if err != nil {
		release()
		return nil, err
	}
	return &feed{Subscription: sub, release: release, oneImage: id != nil}, nil
}

// feed is a live subscription that holds a slot of its connection.
type feed struct {
	*live.Subscription
	release func()
	// oneImage says that the feed follows one image's events, which end
	// with its deletion.
	oneImage bool
}

// Close ends the subscription and frees its slot.
func (f *feed) Close() {
	f.Subscription.Close()
	f.release()
}

// openFeed opens the feed subscribeImage asks for.
func (r *Resolver) openFeed(ctx context.Context, id *string) (*live.Subscription, error) {
	if id == nil {
		return r.Live.Subscribe(ctx, "", nil)
	}
	u, err := parseID("imageId", *id)
	if err != nil {
		return nil, err
	}
	return r.Live.Subscribe(ctx, images.StreamID(u), func() (int64, error) {
		img, err := r.Commands.Load(ctx, u)
		switch {
		case errors.Is(err, images.ErrNotFound) || (err == nil && !r.visible(ctx, img.Owner)):
			return 0, &gqlerror.Error{Message: "image " + u.String() + " not found",
				Extensions: map[string]any{"code": images.CodeNotFound}}
		case err == nil && img.Deleted():
			return 0, &gqlerror.Error{Message: "image " + u.String() + " is deleted: nothing more will happen to it",
				Extensions: map[string]any{"code": images.CodeImageDeleted}}
		}
		return img.Version, err
	})
}

// pump turns a live feed into a subscription's channel: each event goes
// through convert (nil results are skipped) until the client leaves or the
// feed ends; a feed of one image ends after the image's deletion, and the
// subscription completes. A feed closed because the client was too slow ends the
// subscription with a SUBSCRIBER_TOO_SLOW error (see endTooSlow), and is
// logged.
func pump[T any](ctx context.Context, r *Resolver, sub *feed, convert func(eventstore.Event) (*T, error)) <-chan *T {
	out := make(chan *T)
	go func() {
		defer close(out)
		defer sub.Close()
		for {
			e, err := sub.Next(ctx)
			if errors.Is(err, live.ErrTooSlow) {
				r.Logger.WarnContext(ctx, "closed a subscription that fell behind", "err", err)
				if note, ok := ctx.Value(tooSlowKey{}).(*atomic.Bool); ok {
					note.Store(true)
				}
			}
			if err != nil {
				return
			}
			v, err := convert(e)
			if err != nil {
				r.Logger.ErrorContext(ctx, "subscription event", "event", e.ID, "err", err)
			}
			if v != nil {
				select {
				case out <- v:
				case <-ctx.Done():
					return
				}
			}
			if sub.oneImage && e.Type == images.TypeImageDeleted {
				return // nothing more will happen to the image: complete
			}
		}
	}()
	return out
}

func (r *Resolver) ditherCompleted(ctx context.Context, imageID *string) (<-chan *model.Dither, error) {
	sub, err := r.subscribeImage(ctx, imageID)
	if err != nil {
		return nil, err
	}
	return pump(ctx, r, sub, func(e eventstore.Event) (*model.Dither, error) {
		return r.outcome(ctx, e)
	}), nil
}

// outcome returns the dither that a DitherCompleted or DitherFailed event
// decided, as it was right after the event; other events, and those of
// images the principal may not read, give nil. Subscribers share the
// work (see outcomes).
func (r *Resolver) outcome(ctx context.Context, e eventstore.Event) (*model.Dither, error) {
	if e.Type != images.TypeDitherCompleted && e.Type != images.TypeDitherFailed {
		return nil, nil
	}
	o, err := r.outcomes.get(ctx, e.ID, func() (decided, error) {
		// Not the subscriber's ctx: others wait for the answer too.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		return r.decided(ctx, e)
	})
	if err != nil || !r.visible(ctx, o.owner) {
		return nil, err // nothing, or another owner's with private reads
	}
	return o.dither, nil
}

// decided is a dither outcome as subscribers are told of it: the dither
// right after the event, and its image's owner.
type decided struct {
	dither *model.Dither
	owner  string
}

// decided replays the image of an outcome event up to the event. An
// outcome event, or an earlier event of its stream, that this build
// cannot read is an error: pump logs it and the subscriber is not told of
// that outcome. Nothing is lost for good (the log and the read model hold
// the outcome; a subscriber on a newer replica is told), whereas stopping
// would end every subscription of the image. imageEvents shows every
// event as recorded, readable or not, as Image.history does; imageAt and
// subscribing to an image whose stream holds such an event answer
// SERVICE_UNAVAILABLE (commands.ErrNewerEvents).
func (r *Resolver) decided(ctx context.Context, e eventstore.Event) (decided, error) {
	rec, err := commands.Decode(e)
	if err != nil {
		return decided{}, err
	}
	var ditherID uuid.UUID
	switch ev := rec.Event.(type) {
	case images.DitherCompleted:
		ditherID = ev.DitherID
	case images.DitherFailed:
		ditherID = ev.DitherID
	}
	imageID, err := images.ParseStreamID(e.StreamID)
	if err != nil {
		return decided{}, err
	}
	state, err := r.Commands.LoadAt(ctx, imageID, e.StreamVersion)
	if err != nil {
		return decided{}, err
	}
	for i, d := range state.Dithers {
		if d.ID == ditherID {
			return decided{dither: ditherModel(projections.DitherFromState(imageID, i+1, d)), owner: state.Owner}, nil
		}
	}
	return decided{}, errors.New("dither " + ditherID.String() + " not in its image's stream")
}

// outcomeCache shares the outcomes that ditherCompleted subscribers are
// told of: each outcome event is replayed once, however many subscribers
// follow it, and the last few answers are kept for those that come late.
// The zero value is ready to use.
type outcomeCache struct {
	group  singleflight.Group
	once   sync.Once
	recent *lru.LRU[decided] // by event id
}

// keptOutcomes is how many answers an outcomeCache keeps.
const keptOutcomes = 256

// get returns the outcome of the event with id, computed once by load.
func (c *outcomeCache) get(ctx context.Context, id uuid.UUID, load func() (decided, error)) (decided, error) {
	c.once.Do(func() { c.recent = lru.New[decided](keptOutcomes) })
	key := id.String()
	if o, ok := c.recent.Get(ctx, key); ok {
		return o, nil
	}
	v, err, _ := c.group.Do(key, func() (any, error) {
		o, err := load()
		if err == nil {
			c.recent.Add(ctx, key, o)
		}
		return o, err
	})
	if err != nil {
		return decided{}, err
	}
	return v.(decided), nil
}

func (r *Resolver) imageEvents(ctx context.Context, imageID string) (<-chan *model.Event, error) {
	sub, err := r.subscribeImage(ctx, &imageID)
	if err != nil {
		return nil, err
	}
	return pump(ctx, r, sub, func(e eventstore.Event) (*model.Event, error) { return eventModel(e), nil }), nil
}

// tooSlowKey holds, in a subscription's context, the flag that pump sets
// when it ended the subscription because the client fell behind.
type tooSlowKey struct{}

// endTooSlow gives a subscription's responses a flag for pump, and ends a
// stream that pump closed because the client fell behind with one last
// response: a SUBSCRIBER_TOO_SLOW error, so that the client knows it
// missed events and must resubscribe (and read what it missed) rather
// than take the end for a normal completion.
func endTooSlow(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
	tooSlow := new(atomic.Bool)
	h := next(context.WithValue(ctx, tooSlowKey{}, tooSlow))
	told := false
	return func(ctx context.Context) *graphql.Response {
		resp := h(ctx)
		if resp != nil || told || !tooSlow.Load() {
			return resp
		}
		told = true
		return &graphql.Response{Errors: gqlerror.List{{
			Message:    "the subscriber fell behind and was closed; subscribe again and read what was missed",
			Extensions: map[string]any{"code": "SUBSCRIBER_TOO_SLOW"},
		}}}
	}
}
