package processors

import (
	"context"
	"encoding/json"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/imageservice/imageservice/eventstore"
	"github.com/imageservice/imageservice/tracing"
)

// tracerName names the processors' spans' instrumentation scope.
const tracerName = "github.com/imageservice/imageservice/processors"

// jobMetadata is what a job's metadata holds: the W3C traceparent of the
// event that asked for the job, so that the job's span continues the
// event's trace. It is metadata, not an argument, so it takes no part in
// the jobs' uniqueness.
type jobMetadata struct {
	TraceParent string `json:"traceparent,omitempty"`
}

// insertOpts returns the insert options of a job asked for by e: its
// trace context in the job's metadata, or nil when e has none. The job's
// other options come from its args (InsertOpts).
func insertOpts(e eventstore.Event) *river.InsertOpts {
	if _, ok := tracing.Parse(e.Metadata.TraceParent); !ok {
		return nil
	}
	md, err := json.Marshal(jobMetadata{TraceParent: e.Metadata.TraceParent})
	if err != nil {
		return nil
	}
	return &river.InsertOpts{Metadata: md}
}

// jobTraceParent reads the traceparent a job was inserted with, or "".
func jobTraceParent(job *rivertype.JobRow) string {
	var md jobMetadata
	if json.Unmarshal(job.Metadata, &md) != nil {
		return ""
	}
	return md.TraceParent
}

// startJob starts the span of one attempt at a job ("process <kind>"), a
// child of the trace context the job was inserted with.
func startJob(ctx context.Context, tracer trace.Tracer, job *rivertype.JobRow) (context.Context, trace.Span) {
	ctx = tracing.WithTraceParent(ctx, jobTraceParent(job))
	return orNoop(tracer).Start(ctx, "process "+job.Kind, trace.WithSpanKind(trace.SpanKindConsumer), trace.WithAttributes(
		attribute.Int64("river.job.id", job.ID), attribute.String("river.job.kind", job.Kind),
		attribute.Int("river.job.attempt", job.Attempt), attribute.String("river.queue", job.Queue)))
}

// orNoop returns t, or a tracer that records nothing when t is nil.
func orNoop(t trace.Tracer) trace.Tracer {
	if t == nil {
		return noop.NewTracerProvider().Tracer(tracerName)
	}
	return t
}
