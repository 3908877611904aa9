package processors

import (
	"context"
	"fmt"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/semaphore"

	"github.com/imageservice/imageservice/blobstore"
	"github.com/imageservice/imageservice/commands"
	"github.com/imageservice/imageservice/eventstore"
	"github.com/imageservice/imageservice/images"
	"github.com/imageservice/imageservice/tracing"
)

// Inline runs dithers straight from the log, without a job queue: a
// leased subscription split into Concurrency partitions by image, each
// handling its DitherRequested events in order. It serves the embedded
// default (SQLite), which runs as one process: a crash or a failed batch
// hands the batch over again from the checkpoint, and since a dither that
// has an outcome is skipped and outcome events have ids derived from the
// dither, every request still ends in exactly one outcome. A dither that
// keeps failing transiently is tried again after retryWait, and is
// recorded as failed after DitherMaxAttempts hand-overs in this process
// (about two minutes), so that a short outage of the disk or the
// database does not fail it for good. Like a River job, an attempt may
// take Config.JobTimeout at most (JOB_TIMEOUT): one that runs out of time
// fails as any transient failure does, tried again later, recorded as
// failed on the last attempt. The engine stops between rows once the time
// is up (dither.DitherContext); decoding the original is bounded by the
// decoding caps, not by the timeout.
type Inline struct {
	store   eventstore.Store
	worker  *DitherWorker
	n       int
	timeout time.Duration // of one attempt
	retry   time.Duration // the wait before the second attempt (Config.InlineRetryBase)

	mu       sync.Mutex
	attempts map[DitherArgs]int
}

// InlineName is the subscription of the inline processor.
const InlineName = "processors-inline"

// NewInline returns an inline processor; Run starts it.
func NewInline(store eventstore.Store, cmds *commands.Service, blobs blobstore.Store, cfg Config) *Inline {
	cfg = cfg.withDefaults()
	return &Inline{
		store: store, n: cfg.Concurrency, timeout: cfg.JobTimeout, retry: cfg.InlineRetryBase, attempts: map[DitherArgs]int{},
		worker: &DitherWorker{
			Commands: cmds, Blobs: blobs, Budget: semaphore.NewWeighted(cfg.BudgetPixels),
			BudgetPixels: cfg.BudgetPixels, Limits: cfg.Limits, Logger: cfg.Logger,
			Tracer: tracing.Tracer(cfg.TracerProvider, tracerName),
		},
	}
}

// Run follows the log until ctx ends.
func (p *Inline) Run(ctx context.Context, runner *eventstore.Runner) error {
	return runner.Run(ctx, p.Subscription())
}

// Subscription is the inline processor's subscription.
func (p *Inline) Subscription() eventstore.Subscription {
	return eventstore.Subscription{
		Name: InlineName, Partitions: p.n, Handler: p.handle,
		Read: eventstore.ReadOptions{BatchSize: 20},
	}
}

// handle does the batch's dithers in order; an error hands the batch over
// again. An event this build cannot read fails the batch there with
// images.ErrUnreadable, as in the Enqueuer.
func (p *Inline) handle(ctx context.Context, b eventstore.Batch) error {
	for _, e := range b.Events {
		if err := checkReadable(e); err != nil {
			return err
		}
		if e.Type != images.TypeDitherRequested {
			continue
		}
		args, err := ditherArgs(e)
		if err != nil {
			p.worker.Logger.Error("skipping a malformed event", "event", e.ID, "err", err)
			continue
		}
		if err := p.process(ctx, e, args); err != nil {
			return fmt.Errorf("dither %s: %w", args.DitherID, err)
		}
		p.done(args)
	}
	return nil
}

// process counts an attempt at one dither, waits before it when it is not
// the first, and makes it.
func (p *Inline) process(ctx context.Context, e eventstore.Event, args DitherArgs) error {
	attempt := p.attempt(args)
	if attempt > 1 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(p.retryWait(attempt)):
		}
	}
	return p.try(ctx, e, args, attempt)
}

// try makes the given attempt at a dither, within p.timeout, in a span
// ("process dither"), a child of the trace of its DitherRequested event e.
func (p *Inline) try(ctx context.Context, e eventstore.Event, args DitherArgs, attempt int) (err error) {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	ctx, span := orNoop(p.worker.Tracer).Start(tracing.WithTraceParent(ctx, e.Metadata.TraceParent), "process "+DitherArgs{}.Kind(),
		trace.WithSpanKind(trace.SpanKindConsumer), trace.WithAttributes(
			attribute.String("imageservice.event_id", e.ID.String()), attribute.Int("imageservice.attempt", attempt)))
	defer func() { tracing.End(span, err) }()
	return p.worker.Process(ctx, args, attempt >= DitherMaxAttempts)
}

// DefaultInlineRetryBase is the inline processor's default wait before
// its second attempt at a dither (see Config.InlineRetryBase).
const DefaultInlineRetryBase = time.Second

// retryWait is how long the inline processor waits before the given
// attempt (2 and later) at a dither: Config.InlineRetryBase, doubling up
// to a minute.
func (p *Inline) retryWait(attempt int) time.Duration {
	return min(p.retry<<(attempt-2), time.Minute)
}

// attempt counts an attempt at a dither and returns the count.
func (p *Inline) attempt(a DitherArgs) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.attempts[a]++
	return p.attempts[a]
}

func (p *Inline) done(a DitherArgs) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.attempts, a)
}

// Stats reports the work waiting: the dithers' subscription lag.
func (p *Inline) Stats(ctx context.Context) (Stats, error) {
	var s Stats
	for part := range p.n {
		lag, err := eventstore.SubscriptionLag(ctx, p.store, eventstore.CheckpointKey{Subscription: InlineName, Partition: part})
		if err != nil {
			return Stats{}, err
		}
		s.Queued += lag.Events
	}
	return s, nil
}

// ditherArgs reads the dither a DitherRequested event asks for.
func ditherArgs(e eventstore.Event) (DitherArgs, error) {
	imageID, err := images.ParseStreamID(e.StreamID)
	if err != nil {
		return DitherArgs{}, err
	}
	rec, err := commands.Decode(e)
	if err != nil {
		return DitherArgs{}, err
	}
	req, ok := rec.Event.(images.DitherRequested)
	if !ok {
		return DitherArgs{}, fmt.Errorf("event %s is not a DitherRequested", e.ID)
	}
	return DitherArgs{ImageID: imageID, DitherID: req.DitherID}, nil
}

// InlineSubscriptions are the checkpoint keys of the inline processor
// with this configuration, for lag metrics.
func InlineSubscriptions(cfg Config) []eventstore.CheckpointKey {
	cfg = cfg.withDefaults()
	keys := make([]eventstore.CheckpointKey, cfg.Concurrency)
	for i := range keys {
		keys[i] = eventstore.CheckpointKey{Subscription: InlineName, Partition: i}
	}
	return keys
}
