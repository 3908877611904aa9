package processors

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/semaphore"

	"github.com/imageservice/imageservice/blobstore"
	"github.com/imageservice/imageservice/commands"
	"github.com/imageservice/imageservice/eventstore"
	espg "github.com/imageservice/imageservice/eventstore/postgres"
	"github.com/imageservice/imageservice/imagefile"
	"github.com/imageservice/imageservice/images"
	"github.com/imageservice/imageservice/processors/cloudsync"
	"github.com/imageservice/imageservice/processors/notify"
	"github.com/imageservice/imageservice/tracing"
)

// Config tunes the processors. Zero fields take the defaults.
type Config struct {
	// Concurrency is how many dithers run at once on this replica
	// (default GOMAXPROCS).
	Concurrency int
	// BudgetPixels bounds the pixels dithered at once (default 100 MP,
	// about 1.2 GB of working memory at worst). An image that turning
	// upright by its EXIF orientation copies counts twice its pixels.
	BudgetPixels int64
	// Limits are the decoding caps.
	Limits imagefile.Limits
	// Cloud, when set, syncs originals and results to Cloudinary.
	Cloud *cloudsync.Config
	// JobTimeout bounds one attempt (default 5 min), of a River job or
	// of the inline processor; RescueAfter is when a job whose replica
	// died is handed to another (default 6 min; at least JobTimeout).
	JobTimeout, RescueAfter time.Duration
	// InlineRetryBase is how long the inline processor (the embedded
	// default's) waits before its second attempt at a dither that failed
	// transiently; the wait doubles with each attempt, up to a minute
	// (default DefaultInlineRetryBase: the attempts span about two
	// minutes), while the dithers after it go on. River jobs retry on
	// River's schedule.
	InlineRetryBase time.Duration
	Logger          *slog.Logger
	// Notify configures the e-mail and webhook notifications of dither
	// outcomes; PublicURL starts their links to results.
	Notify    notify.Config
	PublicURL string
	// TracerProvider gets a span for every job and dither, each a child of
	// the trace context of the event that asked for it (nil: no spans).
	TracerProvider trace.TracerProvider
}

func (c Config) withDefaults() Config {
	if c.Concurrency <= 0 {
		c.Concurrency = runtime.GOMAXPROCS(0)
	}
	if c.BudgetPixels <= 0 {
		c.BudgetPixels = 100_000_000
	}
	if c.JobTimeout <= 0 {
		c.JobTimeout = 5 * time.Minute
	}
	if c.RescueAfter < c.JobTimeout {
		c.RescueAfter = c.JobTimeout + time.Minute
	}
	if c.InlineRetryBase <= 0 {
		c.InlineRetryBase = DefaultInlineRetryBase
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Migrate applies River's migrations to the pool's schema.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	m, err := rivermigrate.New(riverpgxv5.New(pool), nil)
	if err != nil {
		return fmt.Errorf("migrate job queue: %w", err)
	}
	if _, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return fmt.Errorf("migrate job queue: %w", err)
	}
	return nil
}

// Pending reports whether River's migrations remain to be applied.
func Pending(ctx context.Context, pool *pgxpool.Pool) (bool, error) {
	m, err := rivermigrate.New(riverpgxv5.New(pool), nil)
	if err != nil {
		return false, err
	}
	res, err := m.Validate(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("check job queue migrations: %w", err)
	}
	return !res.OK, nil
}

// Processors runs the jobs of one replica.
type Processors struct {
	store  *espg.Store
	cmds   *commands.Service
	client *river.Client[pgx.Tx]
	cloud  bool
	log    *slog.Logger
}

// New assembles the processors on the event store's database, which must
// be migrated (Migrate).
func New(store *espg.Store, cmds *commands.Service, blobs blobstore.Store, cfg Config) (*Processors, error) {
	cfg = cfg.withDefaults()
	tracer := tracing.Tracer(cfg.TracerProvider, tracerName)
	workers := river.NewWorkers()
	river.AddWorker(workers, &DitherWorker{
		Commands: cmds, Blobs: blobs, Budget: semaphore.NewWeighted(cfg.BudgetPixels),
		BudgetPixels: cfg.BudgetPixels, Limits: cfg.Limits, Logger: cfg.Logger, Tracer: tracer,
	})
	queues := map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: cfg.Concurrency}, notifyQueue: {MaxWorkers: 4}}
	addNotifyWorkers(workers, NewNotifier(cmds, cfg.Notify, cfg.PublicURL, cfg.Logger, cfg.TracerProvider), tracer)
	if cfg.Cloud != nil {
		cloud, err := cloudsync.NewClient(*cfg.Cloud, tracing.ClientTransport(cfg.TracerProvider, nil, "cloudinary"))
		if err != nil {
			return nil, fmt.Errorf("cloudinary: %w", err)
		}
		// Results may be larger than uploads: read what the store holds.
		maxBytes := max(cfg.Limits.MaxBytes, blobstore.DefaultMaxSize)
		addCloudWorkers(workers, cloudsync.NewSyncer(cloud, cmds, blobs, cloudsync.Options{Logger: cfg.Logger, MaxBytes: maxBytes}), tracer, cfg.Logger)
		queues[cloudQueue] = river.QueueConfig{MaxWorkers: 4}
	}
	client, err := river.NewClient(riverpgxv5.New(store.Pool()), &river.Config{
		Queues:     queues,
		Workers:    workers,
		JobTimeout: cfg.JobTimeout,
		// River waits FetchCooldown (100 ms by default) between fetches,
		// which caps a worker at ten jobs a second however short they are.
		FetchCooldown:        5 * time.Millisecond,
		RescueStuckJobsAfter: cfg.RescueAfter,
		Logger:               cfg.Logger,
	})
	if err != nil {
		return nil, fmt.Errorf("job queue: %w", err)
	}
	return &Processors{store: store, cmds: cmds, client: client, cloud: cfg.Cloud != nil, log: cfg.Logger}, nil
}

// Run enqueues jobs from the log and works them until ctx ends, then
// stops taking jobs and waits (up to 30 s) for running ones to finish;
// unfinished jobs are handed back and retried by a replica later.
func (p *Processors) Run(ctx context.Context, runner *eventstore.Runner) error {
	if err := p.client.Start(ctx); err != nil {
		return fmt.Errorf("start job queue: %w", err)
	}
	err := runner.Run(ctx, p.Enqueuer())
	stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if serr := p.client.Stop(stopCtx); serr != nil {
		p.log.Warn("job queue stopped with jobs still running", "err", serr)
	}
	return err
}

// EnqueuerName is the subscription that turns requests into jobs.
const EnqueuerName = "processors-enqueue"

// Enqueuer returns the subscription that inserts a job for every
// DitherRequested (and every other event that asks for work), in the same
// transaction as its checkpoint, with the event's trace context in the
// job's metadata. It stops at an event this build cannot read
// (images.ErrUnreadable): nothing of the batch is enqueued.
func (p *Processors) Enqueuer() eventstore.Subscription {
	return eventstore.Subscription{
		Name:                   EnqueuerName,
		HandlerSavesCheckpoint: true,
		Handler: func(ctx context.Context, b eventstore.Batch) error {
			return pgx.BeginFunc(ctx, p.store.Pool(), func(tx pgx.Tx) error {
				if err := p.enqueue(ctx, tx, b.Events); err != nil {
					return err
				}
				return p.store.SaveCheckpointTx(ctx, tx, b.Checkpoint)
			})
		},
	}
}

// checkReadable returns images.ErrUnreadable (wrapped) for an event of an
// image's stream of a type or schema version this build does not know (a
// newer build wrote it): the processors' subscriptions fail the batch, its
// checkpoint stays before the event, and the runner hands the partition to
// a replica that reads it. Skipping it could lose work for good: a
// DitherRequested of a newer version would stay PENDING for ever, and an
// event of a type this build does not know may ask a newer build for
// work. A malformed event of a known version is logged and skipped
// (retrying never helps; the service never appends one).
func checkReadable(e eventstore.Event) error {
	if _, err := images.ParseStreamID(e.StreamID); err != nil {
		return nil // not an image's: no work
	}
	if err := images.Readable(e.Type, e.SchemaVersion); err != nil {
		return fmt.Errorf("%s: %w", e.Describe(), err)
	}
	return nil
}

func (p *Processors) enqueue(ctx context.Context, tx pgx.Tx, events []eventstore.Event) error {
	var jobs []river.InsertManyParams
	for _, e := range events {
		if err := checkReadable(e); err != nil {
			return err
		}
		opts := insertOpts(e)
		if args := p.jobOf(e); args != nil {
			jobs = append(jobs, river.InsertManyParams{Args: args, InsertOpts: opts})
		}
		notifyArgs, err := p.notifyJobsOf(ctx, e)
		if err != nil {
			return err
		}
		for _, args := range notifyArgs {
			jobs = append(jobs, river.InsertManyParams{Args: args, InsertOpts: opts})
		}
	}
	if len(jobs) == 0 {
		return nil
	}
	if _, err := p.client.InsertManyTx(ctx, tx, jobs); err != nil {
		return fmt.Errorf("enqueue %d jobs: %w", len(jobs), err)
	}
	return nil
}

// jobOf returns the job an event asks for, or nil.
func (p *Processors) jobOf(e eventstore.Event) river.JobArgs {
	imageID, err := images.ParseStreamID(e.StreamID)
	if err != nil {
		return nil
	}
	switch {
	case e.Type == images.TypeDitherRequested:
	case p.cloud && (e.Type == images.TypeImageUploaded || e.Type == images.TypeDitherCompleted || e.Type == images.TypeImageDeleted):
	default:
		return nil
	}
	rec, err := commands.Decode(e)
	if err != nil {
		p.log.Error("skipping a malformed event", "event", e.ID, "err", err)
		return nil
	}
	switch ev := rec.Event.(type) {
	case images.DitherRequested:
		return DitherArgs{ImageID: imageID, DitherID: ev.DitherID}
	case images.ImageUploaded:
		return SyncImageArgs{ImageID: imageID}
	case images.DitherCompleted:
		return SyncDitherArgs{ImageID: imageID, DitherID: ev.DitherID}
	case images.ImageDeleted:
		return DestroyImageArgs{ImageID: imageID}
	}
	return nil
}

// notifyJobsOf returns the notification jobs of a dither's outcome event,
// when its request asked for notifications (the image's state says).
func (p *Processors) notifyJobsOf(ctx context.Context, e eventstore.Event) ([]river.JobArgs, error) {
	if e.Type != images.TypeDitherCompleted && e.Type != images.TypeDitherFailed {
		return nil, nil
	}
	imageID, err := images.ParseStreamID(e.StreamID)
	if err != nil {
		return nil, nil
	}
	rec, err := commands.Decode(e)
	if err != nil {
		p.log.Error("skipping a malformed event", "event", e.ID, "err", err)
		return nil, nil
	}
	var ditherID uuid.UUID
	switch ev := rec.Event.(type) {
	case images.DitherCompleted:
		ditherID = ev.DitherID
	case images.DitherFailed:
		ditherID = ev.DitherID
	}
	img, err := p.cmds.LoadAt(ctx, imageID, e.StreamVersion)
	if err != nil {
		return nil, fmt.Errorf("enqueue notifications of dither %s: %w", ditherID, err)
	}
	d, _ := img.Dither(ditherID)
	return notifyJobs(imageID, ditherID, d.Notify), nil
}
