// Package processors does the service's side effects: each reacts to
// events in the log, does its work idempotently, and records the outcome
// as events, so that nothing is fire-and-forget.
//
// Work runs as River jobs (github.com/riverqueue/river): a subscription of
// the log turns each request event into a job in the same transaction as
// its checkpoint, unique per request, and River's workers do the work,
// retry it with back-off, and rescue jobs whose replica died, so every
// request ends in exactly one recorded outcome, done on one replica at a
// time.
package processors

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"image"
	"io"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/riverqueue/river"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/semaphore"

	"github.com/imageservice/imageservice/blobstore"
	"github.com/imageservice/imageservice/commands"
	"github.com/imageservice/imageservice/dither"
	"github.com/imageservice/imageservice/eventstore"
	"github.com/imageservice/imageservice/imagefile"
	"github.com/imageservice/imageservice/images"
	"github.com/imageservice/imageservice/tracing"
)

// DitherArgs is the job of one requested dither.
type DitherArgs struct {
	ImageID  uuid.UUID `json:"image_id"`
	DitherID uuid.UUID `json:"dither_id"`
}

// Kind implements river.JobArgs.
func (DitherArgs) Kind() string { return "dither" }

// DitherMaxAttempts is how often a dither is tried before it is recorded
// as failed; River's default back-off spaces the attempts over about an hour.
const DitherMaxAttempts = 8

// InsertOpts makes a dither's job unique: the same request never becomes
// two jobs, however often its event is read.
func (DitherArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{MaxAttempts: DitherMaxAttempts, UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

// DitherWorker dithers one image: it loads the original, dithers it with
// package dither, stores the PNG and records DitherCompleted, or
// DitherFailed with a reason a user can read when the work cannot succeed.
type DitherWorker struct {
	river.WorkerDefaults[DitherArgs]
	Commands *commands.Service
	Blobs    blobstore.Store
	// Budget bounds the pixels being dithered at once across workers, so
	// that many large images queue instead of exhausting memory. A dither
	// reserves what decoding its original holds at its peak
	// (imagefile.PeakPixels): twice the pixels of an image that turning
	// upright by its EXIF orientation copies.
	Budget *semaphore.Weighted
	// BudgetPixels is the Budget's size.
	BudgetPixels int64
	// Limits are the decoding caps (as for uploads).
	Limits imagefile.Limits
	Logger *slog.Logger
	// Tracer starts the span of each attempt (nil: none).
	Tracer trace.Tracer
}

// actor is recorded in the metadata of the processor's events.
const actor = "processor:dither"

// Work implements river.Worker. The attempt has a span ("process
// dither"), a child of the trace of the DitherRequested event.
// A last attempt that cannot record the dither's failure is tried again
// (see snoozeLastAttempt), so the dither does not stay PENDING.
func (w *DitherWorker) Work(ctx context.Context, job *river.Job[DitherArgs]) (err error) {
	ctx, span := startJob(ctx, w.Tracer, job.JobRow)
	defer func() { tracing.End(span, err) }()
	return snoozeLastAttempt(ctx, w.Logger, job.JobRow, w.Process(ctx, job.Args, job.Attempt >= job.MaxAttempts), lastAttemptSnooze)
}

// Process does one dither: it records exactly one outcome, or returns a
// transient error to be retried later. On the last attempt a transient
// error is recorded as a failure instead. A dither that already has an
// outcome, or whose image was deleted, is done. The outcome's metadata
// records the span in ctx (the attempt's) as its trace parent.
func (w *DitherWorker) Process(ctx context.Context, a DitherArgs, lastAttempt bool) error {
	span := trace.SpanFromContext(ctx)
	span.SetAttributes(attribute.String("imageservice.image_id", a.ImageID.String()),
		attribute.String("imageservice.dither_id", a.DitherID.String()))
	img, err := w.Commands.Load(ctx, a.ImageID)
	if err != nil {
		return w.transient(ctx, a, lastAttempt, fmt.Errorf("load image: %w", err))
	}
	d, ok := img.Dither(a.DitherID)
	switch {
	case img.Deleted():
		w.Logger.InfoContext(ctx, "image deleted before its dither ran", "image", a.ImageID, "dither", a.DitherID)
		return nil
	case !ok:
		w.Logger.ErrorContext(ctx, "dither not in its image's stream", "image", a.ImageID, "dither", a.DitherID)
		return nil
	case d.Status != images.DitherStatusPending:
		return nil // an outcome is recorded already
	}
	meta := eventstore.Metadata{Actor: actor, CausationID: a.DitherID.String(), TraceParent: tracing.TraceParent(ctx)}
	span.SetAttributes(attribute.String("imageservice.dither.algorithm", d.Options.Algorithm),
		attribute.Int("imageservice.dither.levels", d.Options.Levels))
	result, reason, err := w.dither(ctx, img, d)
	if err != nil {
		return w.transient(ctx, a, lastAttempt, err)
	}
	if reason != "" {
		span.SetStatus(codes.Error, reason)
		_, err = w.Commands.FailDither(ctx, a.ImageID, images.DitherFailure{DitherID: a.DitherID, Reason: reason, CompletedAt: time.Now()}, meta)
	} else {
		_, err = w.Commands.CompleteDither(ctx, a.ImageID, result, meta)
	}
	if err != nil && images.CodeOf(err) != "" {
		// A rule refused the outcome (the image was deleted, or another
		// replica recorded one first): there is nothing left to do.
		w.Logger.InfoContext(ctx, "dither outcome not recorded", "dither", a.DitherID, "reason", err)
		return nil
	}
	return err
}

// transient returns err to be retried later, or, on the last attempt
// (unless the service is stopping), records that the dither failed.
func (w *DitherWorker) transient(ctx context.Context, a DitherArgs, lastAttempt bool, err error) error {
	if !lastAttempt || errors.Is(ctx.Err(), context.Canceled) {
		return err // to be retried; a stopping service is no reason to give up
	}
	reason := "the dither could not be completed after several attempts"
	// The attempt's ctx may be what failed it (its job timed out).
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	_, ferr := w.Commands.FailDither(rctx, a.ImageID, images.DitherFailure{
		DitherID: a.DitherID, Reason: reason, CompletedAt: time.Now(),
	}, eventstore.Metadata{Actor: actor, CausationID: a.DitherID.String(), TraceParent: tracing.TraceParent(ctx)})
	if ferr != nil && images.CodeOf(ferr) == "" {
		return errors.Join(err, ferr)
	}
	w.Logger.ErrorContext(ctx, "dither failed for good", "dither", a.DitherID, "err", err)
	return nil
}

// dither does the work. A non-empty reason is a permanent failure to
// record; an error is transient.
func (w *DitherWorker) dither(ctx context.Context, img images.Image, d images.Dither) (images.DitherResult, string, error) {
	opts, err := Options(d)
	if err != nil {
		return images.DitherResult{}, "the dither's options are not supported: " + err.Error(), nil
	}
	start := time.Now()
	data, reason, err := w.original(ctx, img.SHA256)
	if reason != "" || err != nil {
		return images.DitherResult{}, reason, err
	}
	// Reserve what decoding holds at its peak, which the file's EXIF
	// orientation tells: twice the pixels when turning the image upright
	// copies it. The file is read first for that, outside the budget: it
	// is at most the byte cap, one a worker.
	peak := int64(img.Width) * int64(img.Height)
	if n, err := imagefile.PeakPixels(data); err == nil {
		peak = n
	}
	pixels := min(max(peak, 1), w.BudgetPixels)
	waited := time.Now()
	if err := w.Budget.Acquire(ctx, pixels); err != nil {
		return images.DitherResult{}, "", err
	}
	defer w.Budget.Release(pixels)
	start = start.Add(time.Since(waited)) // the wait is not the dither's duration
	src, reason := w.decode(data)
	if reason != "" {
		return images.DitherResult{}, reason, nil
	}
	out, err := dither.DitherContext(ctx, src, opts)
	if cerr := ctx.Err(); err != nil && cerr != nil {
		// The attempt ran out of time, or the service is stopping: the
		// engine stopped between rows. Not the image's fault.
		return images.DitherResult{}, "", fmt.Errorf("dither: %w", cerr)
	}
	if err != nil {
		return images.DitherResult{}, "the image could not be dithered: " + err.Error(), nil
	}
	var buf bytes.Buffer
	if err := imagefile.EncodePNG(&buf, out); err != nil {
		return images.DitherResult{}, "", fmt.Errorf("encode result: %w", err)
	}
	blob, err := w.Blobs.Put(ctx, "image/png", bytes.NewReader(buf.Bytes()))
	if err != nil {
		return images.DitherResult{}, "", fmt.Errorf("store result: %w", err)
	}
	b := out.Bounds()
	return images.DitherResult{
		DitherID: d.ID, ResultKey: blob.Key, ByteSize: blob.Size, Width: b.Dx(), Height: b.Dy(),
		Colours: Colours(out), DurationMs: time.Since(start).Milliseconds(), CompletedAt: time.Now(),
	}, "", nil
}

// original reads the original image's file.
func (w *DitherWorker) original(ctx context.Context, key string) ([]byte, string, error) {
	r, _, err := w.Blobs.Open(ctx, key)
	if errors.Is(err, blobstore.ErrNotFound) {
		return nil, "the original image is missing", nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("open original: %w", err)
	}
	defer r.Close()
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, "", fmt.Errorf("read original: %w", err)
	}
	return data, "", nil
}

// decode decodes the original image's file, or gives the reason it cannot.
func (w *DitherWorker) decode(data []byte) (image.Image, string) {
	src, _, err := imagefile.Decode(bytes.NewReader(data), w.Limits)
	switch {
	case errors.Is(err, imagefile.ErrTooManyPixels), errors.Is(err, imagefile.ErrTooLarge):
		return nil, "the image is over the size limits for dithering"
	case err != nil:
		return nil, "the original image cannot be decoded: " + err.Error()
	}
	return src, ""
}

// Options turns a dither request's options into the engine's. The random
// algorithm's seed comes from the dither id, so a retry gives the same result.
func Options(d images.Dither) (dither.Options, error) {
	o := d.Options
	alg, err := dither.ParseAlgorithm(o.Algorithm)
	if err != nil {
		return dither.Options{}, err
	}
	cs, err := dither.ParseColorSpace(o.ColorSpace)
	if err != nil {
		return dither.Options{}, err
	}
	if o.Strength == 0 {
		alg = dither.None // no error spread and no threshold pattern
	}
	h := fnv.New64a()
	h.Write(d.ID[:])
	opts := dither.Options{
		Algorithm: alg, Levels: o.Levels, Grayscale: o.Grayscale, Palette: o.Palette,
		Serpentine: o.Serpentine, Strength: o.Strength, ColorSpace: cs, Seed: int64(h.Sum64() >> 1),
	}
	if o.ChannelLevels != nil {
		opts.LevelsR, opts.LevelsG, opts.LevelsB = o.ChannelLevels.R, o.ChannelLevels.G, o.ChannelLevels.B
	}
	return opts, opts.Validate()
}

// Colours counts the distinct colours of an image: the palette entries in
// use for a paletted image, else the distinct RGBA values.
func Colours(img image.Image) int {
	if p, ok := img.(*image.Paletted); ok {
		var used [256]bool
		n := 0
		for _, i := range p.Pix {
			if !used[i] {
				used[i], n = true, n+1
			}
		}
		return n
	}
	seen := map[uint32]struct{}{}
	if p, ok := img.(*image.NRGBA); ok {
		for i := 0; i+3 < len(p.Pix); i += 4 {
			seen[uint32(p.Pix[i])<<24|uint32(p.Pix[i+1])<<16|uint32(p.Pix[i+2])<<8|uint32(p.Pix[i+3])] = struct{}{}
		}
		return len(seen)
	}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, a := img.At(x, y).RGBA()
			seen[r>>8<<24|g>>8<<16|bl>>8<<8|a>>8] = struct{}{}
		}
	}
	return len(seen)
}
