package bridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/imageservice/imageservice/eventstore"
	"github.com/imageservice/imageservice/images"
)

// SubscriptionPrefix starts the subscription name of every bridge:
// "bridge-nats", "bridge-kafka".
const SubscriptionPrefix = "bridge-"

// Default back-off bounds after a failed publish.
const (
	DefaultMinBackoff = 100 * time.Millisecond
	DefaultMaxBackoff = 30 * time.Second
)

// DefaultCheckpointInterval is how often, at most, a bridge that is
// catching up stores its checkpoint.
const DefaultCheckpointInterval = 250 * time.Millisecond

// Bridge forwards the log to one Sink under its own subscription.
type Bridge struct {
	// Store is the log the bridge reads and where its checkpoint lives.
	Store eventstore.Store
	// Sink is where messages go.
	Sink Sink
	// Mapper turns events into messages.
	Mapper Mapper
	// BatchSize is the most events published at once (default 500).
	BatchSize int
	// CheckpointInterval is how often, at most, the checkpoint is stored
	// while the bridge catches up (default DefaultCheckpointInterval); it
	// is stored at once when the bridge has caught up and when it stops.
	// A crash repeats at most the messages of one interval: consumers see
	// them again with the same ids.
	CheckpointInterval time.Duration
	// MinBackoff and MaxBackoff bound the wait after each failed publish
	// (defaults DefaultMinBackoff and DefaultMaxBackoff); the wait doubles
	// with every consecutive failure and resets after a success.
	MinBackoff, MaxBackoff time.Duration
	// Logger receives failures (default slog.Default()).
	Logger *slog.Logger
	// ObservePublish, when set, is told of every batch published to the
	// sink: how many messages, how long it took, and the error, if any.
	ObservePublish PublishObserver

	// sleep waits for d or until ctx ends (a test hook).
	sleep func(ctx context.Context, d time.Duration) error
	// failures counts consecutive failed batches (one handler runs at a time).
	failures int
	// free holds the buffers of published batches, for later batches.
	free freeList[buffers]
	// states are image states folded from the events mapped so far, by
	// stream, so that Map rarely needs to read a stream. Only prepare
	// touches them, one batch at a time.
	states map[string]images.Image
}

// PublishObserver is told of each batch a bridge published to its sink
// (named by Sink.Name): its messages, how long the sink took to get every
// acknowledgement or fail, and the error (nil when all were acknowledged).
type PublishObserver func(sink string, messages int, d time.Duration, err error)

// Name is the bridge's subscription name: SubscriptionPrefix + the sink's name.
func (b *Bridge) Name() string { return SubscriptionPrefix + b.Sink.Name() }

// Subscription returns the bridge's subscription: one partition, so the
// log is forwarded in its global order, checkpointed by the runner after
// the handler returns, that is after every message was acknowledged. The
// next batch is read and mapped while the current one is published, and
// the checkpoint is stored every CheckpointInterval while catching up.
func (b *Bridge) Subscription() eventstore.Subscription {
	interval := b.CheckpointInterval
	if interval <= 0 {
		interval = DefaultCheckpointInterval
	}
	return eventstore.Subscription{
		Name:               b.Name(),
		Prepare:            b.prepare,
		Handler:            b.handle,
		CheckpointInterval: interval,
		Read:               eventstore.ReadOptions{BatchSize: b.BatchSize, ReadAhead: true},
	}
}

// Run runs the bridge under the runner's leases until ctx ends. Its sink
// is warmed (see Warmer) meanwhile, so that the first batch does not wait
// for the broker's set-up after the lease and the first read.
func (b *Bridge) Run(ctx context.Context, r *eventstore.Runner) error {
	stop := b.warm(ctx)
	defer stop()
	return r.Run(ctx, b.Subscription())
}

// warm warms the sink, when it can be, on a goroutine of its own, and
// returns a function that stops it and waits for it. A failure is logged
// at debug level only: the first Publish meets it again and reports it.
func (b *Bridge) warm(ctx context.Context) (stop func()) {
	w, ok := sinkAs[Warmer](b.Sink)
	if !ok {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := w.Warm(ctx); err != nil && ctx.Err() == nil {
			b.log().Debug("bridge: warming the sink failed; the first publish will retry", "subscription", b.Name(), "err", err)
		}
	}()
	return func() { cancel(); <-done }
}

// Lag reports how far the bridge is behind the log.
func (b *Bridge) Lag(ctx context.Context) (eventstore.Lag, error) {
	lag, err := eventstore.SubscriptionLag(ctx, b.Store, eventstore.CheckpointKey{Subscription: b.Name()})
	if err != nil {
		return lag, fmt.Errorf("lag of %s: %w", b.Name(), err)
	}
	return lag, nil
}

// prepare maps a batch, on the runner's reading goroutine while the
// previous batch is published.
func (b *Bridge) prepare(ctx context.Context, events []eventstore.Event) (any, error) {
	buf := b.free.get()
	if err := b.messages(ctx, buf, events); err != nil {
		return nil, err
	}
	return buf, nil
}

// handle publishes one batch's messages, as prepared. After a failure it
// waits, with a back-off that grows with every consecutive failure, before
// returning the error, so that the runner's re-delivery from the
// checkpoint does not hammer a broker that is down.
func (b *Bridge) handle(ctx context.Context, batch eventstore.Batch) error {
	buf, ok := batch.Prepared.(*buffers)
	if !ok {
		return fmt.Errorf("bridge %s: batch of %d events not prepared", b.Name(), len(batch.Events))
	}
	msgs := buf.msgs
	start := time.Now()
	err := b.Sink.Publish(ctx, msgs)
	if b.ObservePublish != nil {
		b.ObservePublish(b.Sink.Name(), len(msgs), time.Since(start), err)
	}
	if err == nil {
		b.failures = 0
		buf.reset() // acknowledged: the sink no longer uses them
		b.free.put(buf)
		return nil
	}
	// After a failure the sink may still hold some messages (a retry in
	// flight): their buffers are left to the garbage collector.
	err = fmt.Errorf("bridge %s: publish %d messages: %w", b.Name(), len(msgs), err)
	if ctx.Err() == nil {
		d := b.backoff()
		b.log().Warn("bridge publish failed; retrying from the checkpoint", "subscription", b.Name(), "retry_in", d, "err", err)
		_ = b.wait(ctx, d)
	}
	return err
}

// backoff returns the wait after the next failure and counts it.
func (b *Bridge) backoff() time.Duration {
	lo, hi := b.MinBackoff, b.MaxBackoff
	if lo <= 0 {
		lo = DefaultMinBackoff
	}
	if hi < lo {
		hi = max(DefaultMaxBackoff, lo)
	}
	d := lo << min(b.failures, 30)
	b.failures++
	return min(d, hi)
}

func (b *Bridge) wait(ctx context.Context, d time.Duration) error {
	if b.sleep != nil {
		return b.sleep(ctx, d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func (b *Bridge) log() *slog.Logger {
	if b.Logger != nil {
		return b.Logger
	}
	return slog.Default()
}

// maxCachedStates bounds the image states a bridge keeps between events.
const maxCachedStates = 10_000

// messages maps a batch's events to buf.msgs, their bodies and headers in
// buf. Each event is decoded once, for both its messages and the cached
// state of its image.
//
// What the bridge does with an event it cannot decode follows the log's
// rule for consumers: never skip for good what a newer build would
// forward. An event of a type with old-format messages but a schema
// version this build does not know (a newer build wrote it, during a
// rolling deploy) fails the batch with images.ErrUnreadable: nothing of it
// is published, the checkpoint stays before it, and the runner hands the
// bridge to a replica that reads it; forwarding it on the events topic
// alone would lose its old-format message for the old consumers for good.
// So does an event whose old-format message needs the image's state when
// an earlier event of its stream is one this build cannot read (see
// stateBefore). An event of a type this build does not know has no
// old-format message (those are the four types of hasLegacy) and goes on
// the events topic. A malformed event of a known version (retrying never
// helps; the service never appends one) is logged and forwarded on the
// events topic only.
func (b *Bridge) messages(ctx context.Context, buf *buffers, events []eventstore.Event) error {
	m := b.Mapper.withDefaults()
	for _, e := range events {
		if !strings.HasPrefix(e.StreamID, images.StreamPrefix) {
			continue // not an image's event (an API key's): never published, not even decoded
		}
		before, err := b.stateBefore(ctx, e)
		if err != nil {
			return err
		}
		decoded, derr := images.Unmarshal(e.Type, e.SchemaVersion, e.Data)
		if hasLegacy(e.Type) && errors.Is(derr, images.ErrUnreadable) {
			return fmt.Errorf("%s: %w", e.Describe(), derr)
		}
		buf.msgs, err = m.appendMessages(buf.msgs, buf, e, decoded, derr, before, derr == nil)
		if err != nil {
			b.log().Error("bridge: event forwarded on the events topic only", "subscription", b.Name(), "event_id", e.ID, "err", err)
		}
		b.remember(e, decoded, derr, before)
	}
	return nil
}

// stateBefore returns the image's state just before the event when Map
// needs it: from the states folded from earlier events when they reach
// exactly the version before, or else by replaying the stream. An earlier
// event this build cannot read fails with images.ErrUnreadable rather than
// give a state without it: the old-format message would then be wrong
// for good (a DITHER_DELETED without a dither that a newer event
// completed, a DITHER_UPLOADED without the levels of a newer request).
// The cached states never hold such an event (see remember).
func (b *Bridge) stateBefore(ctx context.Context, e eventstore.Event) (images.Image, error) {
	if !NeedsState(e.Type) || e.StreamVersion <= 1 {
		return images.Image{}, nil
	}
	if s, ok := b.states[e.StreamID]; ok && s.Version == e.StreamVersion-1 {
		return s, nil
	}
	events, err := b.Store.ReadStream(ctx, e.StreamID, 0, int(e.StreamVersion-1))
	if err != nil {
		return images.Image{}, fmt.Errorf("read %s before version %d: %w", e.StreamID, e.StreamVersion, err)
	}
	var state images.Image
	for _, prior := range events {
		decoded, err := images.Unmarshal(prior.Type, prior.SchemaVersion, prior.Data)
		if errors.Is(err, images.ErrUnreadable) {
			return images.Image{}, fmt.Errorf("state of %s before version %d: %s: %w", e.StreamID, e.StreamVersion, prior.Describe(), err)
		}
		state = evolve(state, prior, decoded, err)
	}
	state.Version = e.StreamVersion - 1
	return state, nil
}

// remember folds the event into the cached state of its stream, when
// that state is the one just before it (or the event starts the stream).
func (b *Bridge) remember(e eventstore.Event, decoded images.Event, decodeErr error, before images.Image) {
	if b.states == nil || len(b.states) >= maxCachedStates {
		b.states = make(map[string]images.Image)
	}
	s, ok := b.states[e.StreamID]
	switch {
	case NeedsState(e.Type) && e.StreamVersion > 1:
		s, ok = before, true
	case e.StreamVersion == 1:
		s, ok = images.Image{}, true
	case !ok || s.Version != e.StreamVersion-1:
		delete(b.states, e.StreamID)
		return
	}
	if e.Type == images.TypeImageDeleted || errors.Is(decodeErr, images.ErrUnreadable) {
		// Nothing follows a deletion; a state without an event this build
		// cannot read is not cached, so that stateBefore replays the
		// stream, and stops there, when it is needed.
		delete(b.states, e.StreamID)
		return
	}
	b.states[e.StreamID] = evolve(s, e, decoded, decodeErr)
}

// evolve folds a recorded event, decoded by images.Unmarshal, into a
// state; an event that could not be decoded adds nothing but its version.
func evolve(s images.Image, e eventstore.Event, decoded images.Event, decodeErr error) images.Image {
	if decodeErr != nil {
		s.Version = e.StreamVersion
		return s
	}
	return images.Evolve(s, decoded, images.EventMeta{EventID: e.ID, StreamVersion: e.StreamVersion, RecordedAt: e.RecordedAt})
}
