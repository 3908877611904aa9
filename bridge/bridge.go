package bridge

import (
	"context"
	"fmt"
	"log/slog"
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
	// MinBackoff and MaxBackoff bound the wait after each failed publish
	// (defaults DefaultMinBackoff and DefaultMaxBackoff); the wait doubles
	// with every consecutive failure and resets after a success.
	MinBackoff, MaxBackoff time.Duration
	// Logger receives failures (default slog.Default()).
	Logger *slog.Logger

	// sleep waits for d or until ctx ends (a test hook).
	sleep func(ctx context.Context, d time.Duration) error
	// failures counts consecutive failed batches (one handler runs at a time).
	failures int
}

// Name is the bridge's subscription name: SubscriptionPrefix + the sink's name.
func (b *Bridge) Name() string { return SubscriptionPrefix + b.Sink.Name() }

// Subscription returns the bridge's subscription: one partition, so the
// log is forwarded in its global order, checkpointed by the runner after
// the handler returns, that is after every message was acknowledged.
func (b *Bridge) Subscription() eventstore.Subscription {
	return eventstore.Subscription{
		Name:    b.Name(),
		Handler: b.handle,
		Read:    eventstore.ReadOptions{BatchSize: b.BatchSize},
	}
}

// Run runs the bridge under the runner's leases until ctx ends.
func (b *Bridge) Run(ctx context.Context, r *eventstore.Runner) error {
	return r.Run(ctx, b.Subscription())
}

// Lag reports how far the bridge is behind the log.
func (b *Bridge) Lag(ctx context.Context) (eventstore.Lag, error) {
	lag, err := eventstore.SubscriptionLag(ctx, b.Store, eventstore.CheckpointKey{Subscription: b.Name()})
	if err != nil {
		return lag, fmt.Errorf("lag of %s: %w", b.Name(), err)
	}
	return lag, nil
}

// handle maps and publishes one batch. After a failure it waits, with a
// back-off that grows with every consecutive failure, before returning the
// error, so that the runner's re-delivery from the checkpoint does not
// hammer a broker that is down.
func (b *Bridge) handle(ctx context.Context, batch eventstore.Batch) error {
	msgs, err := b.messages(ctx, batch.Events)
	if err == nil {
		err = b.Sink.Publish(ctx, msgs)
	}
	if err == nil {
		b.failures = 0
		return nil
	}
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

// messages maps a batch's events, loading an image's earlier state only
// for the events that need it. An event that cannot be mapped in the old
// format is logged and forwarded on the events topic only: one bad event
// must not stop the bridge.
func (b *Bridge) messages(ctx context.Context, events []eventstore.Event) ([]Message, error) {
	msgs := make([]Message, 0, len(events)*2)
	for _, e := range events {
		var before images.Image
		if NeedsState(e.Type) {
			var err error
			if before, err = b.stateBefore(ctx, e); err != nil {
				return nil, err
			}
		}
		m, err := b.Mapper.Map(e, before)
		if err != nil {
			b.log().Error("bridge: event forwarded on the events topic only", "subscription", b.Name(), "event_id", e.ID, "err", err)
		}
		msgs = append(msgs, m...)
	}
	return msgs, nil
}

// stateBefore replays an image's stream up to just before the event.
func (b *Bridge) stateBefore(ctx context.Context, e eventstore.Event) (images.Image, error) {
	var state images.Image
	if e.StreamVersion <= 1 {
		return state, nil
	}
	events, err := b.Store.ReadStream(ctx, e.StreamID, 0, int(e.StreamVersion-1))
	if err != nil {
		return state, fmt.Errorf("read %s before version %d: %w", e.StreamID, e.StreamVersion, err)
	}
	for _, prior := range events {
		ev, err := images.Unmarshal(prior.Type, prior.SchemaVersion, prior.Data)
		if err != nil {
			continue // an event we cannot read adds nothing to the state
		}
		state = images.Evolve(state, ev, images.EventMeta{
			EventID: prior.ID, StreamVersion: prior.StreamVersion, RecordedAt: prior.RecordedAt})
	}
	return state, nil
}
