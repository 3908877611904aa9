package processors

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"log/slog"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/riverqueue/river"
	"go.opentelemetry.io/otel/trace"

	"github.com/imageservice/imageservice/commands"
	"github.com/imageservice/imageservice/eventstore"
	"github.com/imageservice/imageservice/images"
	"github.com/imageservice/imageservice/processors/notify"
	"github.com/imageservice/imageservice/tracing"
)

// Notification jobs: one per dither and channel that asked for one,
// enqueued when the dither's outcome is read from the log. River retries
// them with notify's back-off; the last attempt, or a permanent error,
// records NotificationFailed.

// NotifyEmailArgs e-mails a dither's outcome.
type NotifyEmailArgs struct {
	ImageID  uuid.UUID `json:"image_id"`
	DitherID uuid.UUID `json:"dither_id"`
}

// NotifyWebhookArgs posts a dither's outcome to its webhook.
type NotifyWebhookArgs struct {
	ImageID  uuid.UUID `json:"image_id"`
	DitherID uuid.UUID `json:"dither_id"`
}

// Kind implements river.JobArgs.
func (NotifyEmailArgs) Kind() string { return "notify_email" }

// Kind implements river.JobArgs.
func (NotifyWebhookArgs) Kind() string { return "notify_webhook" }

// NotifyMaxAttempts is how often a notification is tried; with the
// default back-off (30 s doubling to an hour) that spans about four hours.
const NotifyMaxAttempts = 10

// notifyQueue keeps slow mail servers and webhooks away from dithering.
const notifyQueue = "notify"

func notifyInsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: notifyQueue, MaxAttempts: NotifyMaxAttempts, UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

// InsertOpts makes the job unique per dither and puts it on the notify queue.
func (NotifyEmailArgs) InsertOpts() river.InsertOpts { return notifyInsertOpts() }

// InsertOpts makes the job unique per dither and puts it on the notify queue.
func (NotifyWebhookArgs) InsertOpts() river.InsertOpts { return notifyInsertOpts() }

// notifyActor is recorded in the metadata of notification events.
const notifyActor = "processor:notify"

// Notifier sends the notifications of dither outcomes and records them.
type Notifier struct {
	Commands *commands.Service
	Config   notify.Config
	// PublicURL starts the links to results (PUBLIC_URL).
	PublicURL string
	Logger    *slog.Logger
	webhooks  *notify.Webhooks
}

// NewNotifier returns a notifier on the command service; webhook requests
// get client spans of tp (which may be nil).
func NewNotifier(cmds *commands.Service, cfg notify.Config, publicURL string, log *slog.Logger, tp trace.TracerProvider) *Notifier {
	return &Notifier{Commands: cmds, Config: cfg, PublicURL: strings.TrimRight(publicURL, "/"), Logger: log,
		webhooks: notify.NewWebhooks(cfg.WebhookSecret, cfg.AllowPrivate, tp)}
}

// notifyWorker runs one channel's jobs.
type notifyWorker[T river.JobArgs] struct {
	river.WorkerDefaults[T]
	n       *Notifier
	channel string
	ids     func(T) (uuid.UUID, uuid.UUID)
	tracer  trace.Tracer
}

// Work implements river.Worker. The attempt has a span, a child of the
// trace of the dither's outcome, which the notification's event records
// as its trace parent.
func (w *notifyWorker[T]) Work(ctx context.Context, job *river.Job[T]) (err error) {
	ctx, span := startJob(ctx, w.tracer, job.JobRow)
	defer func() { tracing.End(span, err) }()
	imageID, ditherID := w.ids(job.Args)
	err = w.n.Process(ctx, imageID, ditherID, w.channel, job.Attempt, job.Attempt >= job.MaxAttempts)
	return snoozeLastAttempt(ctx, w.n.Logger, job.JobRow, err, lastAttemptSnooze)
}

// NextRetry implements river.Worker with notify's back-off.
func (w *notifyWorker[T]) NextRetry(job *river.Job[T]) time.Time {
	return time.Now().Add(w.n.Config.NextRetry(job.Attempt))
}

// addNotifyWorkers registers the notification workers.
func addNotifyWorkers(workers *river.Workers, n *Notifier, tracer trace.Tracer) {
	river.AddWorker(workers, &notifyWorker[NotifyEmailArgs]{n: n, channel: images.ChannelEmail, tracer: tracer,
		ids: func(a NotifyEmailArgs) (uuid.UUID, uuid.UUID) { return a.ImageID, a.DitherID }})
	river.AddWorker(workers, &notifyWorker[NotifyWebhookArgs]{n: n, channel: images.ChannelWebhook, tracer: tracer,
		ids: func(a NotifyWebhookArgs) (uuid.UUID, uuid.UUID) { return a.ImageID, a.DitherID }})
}

// notifyJobs returns the jobs of a dither outcome's notifications.
func notifyJobs(imageID, ditherID uuid.UUID, n images.Notify) []river.JobArgs {
	var jobs []river.JobArgs
	if n.Email != "" {
		jobs = append(jobs, NotifyEmailArgs{ImageID: imageID, DitherID: ditherID})
	}
	if n.WebhookURL != "" {
		jobs = append(jobs, NotifyWebhookArgs{ImageID: imageID, DitherID: ditherID})
	}
	return jobs
}

// Process sends one channel's notification of a dither's outcome and
// records it. A notification already recorded, or of a deleted image, is
// done. A transient error is returned to be retried, except on the last
// attempt, when it is recorded as NotificationFailed, as a permanent one is.
func (n *Notifier) Process(ctx context.Context, imageID, ditherID uuid.UUID, channel string, attempt int, last bool) error {
	img, err := n.Commands.Load(ctx, imageID)
	if err != nil {
		return fmt.Errorf("notify: load image %s: %w", imageID, err)
	}
	d, ok := img.Dither(ditherID)
	if _, done := d.Notification(channel); !ok || done || img.Deleted() || d.Status == images.DitherStatusPending {
		n.Logger.InfoContext(ctx, "notification not due", "image", imageID, "dither", ditherID, "channel", channel,
			"found", ok, "deleted", img.Deleted(), "already_recorded", done)
		return nil
	}
	sendErr := n.send(ctx, img, d, channel)
	out := images.NotificationOutcome{DitherID: ditherID, Channel: channel, Attempt: attempt, At: time.Now()}
	switch {
	case sendErr == nil:
	case notify.Retryable(sendErr) && !last:
		n.Logger.WarnContext(ctx, "notification will be retried", "dither", ditherID, "channel", channel, "attempt", attempt, "err", sendErr)
		return sendErr
	case errors.Is(ctx.Err(), context.Canceled):
		return sendErr // the service is stopping: no reason to give up
	default:
		out.Reason = failureReason(sendErr, last)
		n.Logger.ErrorContext(ctx, "notification failed for good", "dither", ditherID, "channel", channel, "attempt", attempt, "err", sendErr)
	}
	return n.record(ctx, imageID, out)
}

// record appends the outcome; a rule's refusal (the image was deleted
// meanwhile) leaves nothing to do.
func (n *Notifier) record(ctx context.Context, imageID uuid.UUID, out images.NotificationOutcome) error {
	meta := eventstore.Metadata{Actor: notifyActor, CausationID: out.DitherID.String(), TraceParent: tracing.TraceParent(ctx)}
	// The attempt's ctx may have run out while sending.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	_, err := n.Commands.RecordNotification(rctx, imageID, out, meta)
	if err != nil && images.CodeOf(err) != "" {
		n.Logger.InfoContext(ctx, "notification outcome not recorded", "dither", out.DitherID, "reason", err)
		return nil
	}
	if err != nil {
		return fmt.Errorf("record notification of dither %s: %w", out.DitherID, err)
	}
	return nil
}

// failureReason is what NotificationFailed records: a permanent error's
// own (safe) message, or for transient ones the last error's.
func failureReason(err error, last bool) string {
	var p *notify.PermanentError
	if errors.As(err, &p) {
		return p.Reason
	}
	if last {
		return fmt.Sprintf("gave up after %d attempts: %v", NotifyMaxAttempts, err)
	}
	return err.Error()
}

// send delivers one channel's notification.
func (n *Notifier) send(ctx context.Context, img images.Image, d images.Dither, channel string) error {
	if channel == images.ChannelEmail {
		if n.Config.SMTP == nil {
			return &notify.PermanentError{Reason: "e-mail notifications are not configured on this server (SMTP_URL)"}
		}
		return n.Config.SMTP.Send(ctx, n.email(img, d))
	}
	if n.Config.WebhookSecret == "" {
		return &notify.PermanentError{Reason: "webhook notifications are not configured on this server (WEBHOOK_SECRET)"}
	}
	body, err := json.Marshal(n.payload(img, d))
	if err != nil {
		return fmt.Errorf("webhook body: %w", err)
	}
	return n.webhooks.Post(ctx, d.Notify.WebhookURL, images.OutcomeEventID(d.ID, "notify/webhook").String(), body)
}

// resultURL is the link to a completed dither's result: its cloud copy
// when synced, else the service's blob URL.
func (n *Notifier) resultURL(d images.Dither) string {
	switch {
	case d.Status != images.DitherStatusCompleted:
		return ""
	case d.URL != "":
		return d.URL
	}
	return n.PublicURL + "/blobs/" + d.ResultKey
}

// WebhookPayload is the JSON body of a webhook.
type WebhookPayload struct {
	// Event is "dither.completed" or "dither.failed".
	Event      string    `json:"event"`
	ImageID    string    `json:"image_id"`
	DitherID   string    `json:"dither_id"`
	Status     string    `json:"status"`
	URL        string    `json:"url,omitempty"`
	Error      string    `json:"error,omitempty"`
	OccurredAt time.Time `json:"occurred_at"`
}

func (n *Notifier) payload(img images.Image, d images.Dither) WebhookPayload {
	return WebhookPayload{
		Event: "dither." + strings.ToLower(string(d.Status)), ImageID: img.ID.String(), DitherID: d.ID.String(),
		Status: string(d.Status), URL: n.resultURL(d), Error: d.Error, OccurredAt: d.CompletedAt.UTC(),
	}
}

// email renders the e-mail of a dither's outcome.
func (n *Notifier) email(img images.Image, d images.Dither) notify.Message {
	m := notify.Message{To: d.Notify.Email, MessageID: images.OutcomeEventID(d.ID, "notify/email").String() + "@imageservice",
		Date: time.Now()}
	what := fmt.Sprintf("%s (%s, %d levels)", img.Filename, d.Options.Algorithm, d.Options.Levels)
	if d.Status == images.DitherStatusCompleted {
		link := n.resultURL(d)
		m.Subject = "Your dithered image is ready: " + img.Filename
		m.Text = fmt.Sprintf("The dither of %s is ready.\n\nDownload it here:\n%s\n", what, link)
		m.HTML = fmt.Sprintf(`<p>The dither of %s is ready.</p><p><a href="%s">Download the dithered image</a></p>`,
			html.EscapeString(what), html.EscapeString(link))
		return m
	}
	m.Subject = "Your dither failed: " + img.Filename
	m.Text = fmt.Sprintf("The dither of %s failed:\n%s\n", what, d.Error)
	m.HTML = fmt.Sprintf(`<p>The dither of %s failed:</p><p>%s</p>`, html.EscapeString(what), html.EscapeString(d.Error))
	return m
}
