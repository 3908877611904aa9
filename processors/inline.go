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
// default (SQLite), which runs as one process.
//
// A dither whose attempt fails transiently does not hold up the dithers
// after it: it is parked, in memory, and tried again by a goroutine of its
// partition (one per partition, living while this process holds the
// partition's lease) after retryWait (Config.InlineRetryBase, doubling up
// to a minute), while the partition goes on with the dithers after it.
// The last of DitherMaxAttempts attempts in this process (about two
// minutes after the first) records the dither as failed, so that a short
// outage of the disk or the database does not fail it for good. Like a
// River job, an attempt may take Config.JobTimeout at most (JOB_TIMEOUT):
// one that runs out of time fails as any transient failure does. The
// engine stops between rows once the time is up (dither.DitherContext);
// decoding the original is bounded by the decoding caps, not by the
// timeout. A partition thus runs up to two dithers at once (the next one
// in the log and a parked one), within the pixel budget.
//
// No work is lost: the partition's checkpoint, which the processor stores
// itself, stays just before its oldest parked dither (at the position of
// the last event handled before it), so a crash or a lost lease hands that
// dither and everything after it over again from the log. A dither that
// has an outcome is skipped and outcome events have ids derived from the
// dither, so every request still ends in exactly one outcome. Attempts
// are counted in memory: a dither handed over again after a lost lease
// goes on with its count (and waits for its next attempt as it would
// have), one handed over after a restart of the process starts again from
// the first.
type Inline struct {
	store   eventstore.Store
	worker  *DitherWorker
	n       int
	timeout time.Duration // of one attempt
	retry   time.Duration // the wait before the second attempt (Config.InlineRetryBase)

	mu    sync.Mutex
	tries map[DitherArgs]tries // the dithers with failed attempts in this process
	parts []*partition         // by partition: the current lease's state
	wg    sync.WaitGroup       // the partitions' retry goroutines
}

// tries are the attempts at a dither that failed in this process, and
// when the next is due.
type tries struct {
	failed int
	due    time.Time
}

// InlineName is the subscription of the inline processor.
const InlineName = "processors-inline"

// NewInline returns an inline processor; Run starts it.
func NewInline(store eventstore.Store, cmds *commands.Service, blobs blobstore.Store, cfg Config) *Inline {
	cfg = cfg.withDefaults()
	return &Inline{
		store: store, n: cfg.Concurrency, timeout: cfg.JobTimeout, retry: cfg.InlineRetryBase,
		tries: map[DitherArgs]tries{}, parts: make([]*partition, cfg.Concurrency),
		worker: &DitherWorker{
			Commands: cmds, Blobs: blobs, Budget: semaphore.NewWeighted(cfg.BudgetPixels),
			BudgetPixels: cfg.BudgetPixels, Limits: cfg.Limits, Logger: cfg.Logger,
			Tracer: tracing.Tracer(cfg.TracerProvider, tracerName),
		},
	}
}

// Run follows the log until ctx ends, and returns once the partitions'
// retry goroutines have stopped too.
func (p *Inline) Run(ctx context.Context, runner *eventstore.Runner) error {
	err := runner.Run(ctx, p.Subscription())
	p.wg.Wait()
	return err
}

// Subscription is the inline processor's subscription. Its handler stores
// the checkpoint, batches without dithers included, so that it stays
// before the parked dithers.
func (p *Inline) Subscription() eventstore.Subscription {
	return eventstore.Subscription{
		Name: InlineName, Partitions: p.n, Handler: p.handle,
		HandlerSavesCheckpoint: true, HandEmptyBatches: true,
		Read: eventstore.ReadOptions{BatchSize: 20},
	}
}

// handle does the batch's dithers in order, parking those that fail
// transiently, and stores the checkpoint; an error hands the batch over
// again. An event this build cannot read fails the batch there with
// images.ErrUnreadable, as in the Enqueuer.
func (p *Inline) handle(ctx context.Context, b eventstore.Batch) error {
	part, err := p.partition(ctx, b.Checkpoint)
	if err != nil {
		return err
	}
	for _, e := range b.Events {
		if err := p.handleEvent(ctx, part, e); err != nil {
			return err
		}
	}
	part.handled(b.Checkpoint.Position)
	return p.saveCheckpoint(ctx, part)
}

// handleEvent handles one event of the partition: a DitherRequested is
// attempted, or parked.
func (p *Inline) handleEvent(ctx context.Context, part *partition, e eventstore.Event) error {
	if err := checkReadable(e); err != nil {
		return err
	}
	if e.Type == images.TypeDitherRequested {
		args, err := ditherArgs(e)
		if err != nil {
			p.worker.Logger.Error("skipping a malformed event", "event", e.ID, "err", err)
		} else if err := p.start(ctx, part, e, args); err != nil {
			return fmt.Errorf("dither %s: %w", args.DitherID, err)
		}
	}
	part.handled(e.Position)
	return nil
}

// start makes the first attempt at a dither the log hands over, and parks
// it when that fails transiently. One whose attempts failed already in
// this process (its partition resumes after a lost lease) is parked at
// once, to be tried when due.
func (p *Inline) start(ctx context.Context, part *partition, e eventstore.Event, args DitherArgs) error {
	if _, ok := p.triesOf(args); !ok {
		ended, err := p.attempt(ctx, e, args)
		if ended || err != nil {
			return err
		}
	}
	part.park(e, args)
	return nil
}

// attempt makes the next attempt at a dither, and reports whether the
// dither is done (an outcome is recorded, or none is needed). A transient
// failure is counted, and the next attempt scheduled; an error means the
// partition stops (ctx ended), and the attempt does not count.
func (p *Inline) attempt(ctx context.Context, e eventstore.Event, args DitherArgs) (ended bool, err error) {
	t, _ := p.triesOf(args)
	err = p.try(ctx, e, args, t.failed+1)
	switch {
	case err == nil:
		p.forget(args)
		return true, nil
	case ctx.Err() != nil:
		return false, fmt.Errorf("attempt %d: %w", t.failed+1, err)
	}
	t.failed++
	t.due = time.Now().Add(p.retryWait(t.failed + 1))
	p.setTries(args, t)
	p.worker.Logger.WarnContext(ctx, "dither attempt failed; trying again later", "dither", args.DitherID,
		"attempt", t.failed, "retry_in", p.retryWait(t.failed+1), "err", err)
	return false, nil
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
	return min(p.retry<<min(attempt-2, 20), time.Minute)
}

// triesOf returns the failed attempts at a dither, if any.
func (p *Inline) triesOf(a DitherArgs) (tries, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	t, ok := p.tries[a]
	return t, ok
}

func (p *Inline) setTries(a DitherArgs, t tries) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.tries[a] = t
}

func (p *Inline) forget(a DitherArgs) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.tries, a)
}

// Stats reports the work waiting: the dithers' subscription lag, which
// counts the parked dithers too (the checkpoint stays before them).
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
