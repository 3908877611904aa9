package processors

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/imageservice/imageservice/eventstore"
	"github.com/imageservice/imageservice/tracing"
)

const testTP = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

func TestJobMetadataCarriesTheEventsTraceContext(t *testing.T) {
	opts := insertOpts(eventstore.Event{Metadata: eventstore.Metadata{TraceParent: testTP}})
	if opts == nil {
		t.Fatal("no insert options for an event with a trace context")
	}
	if !reflect.DeepEqual(*opts, river.InsertOpts{Metadata: opts.Metadata}) {
		t.Errorf("insert options %+v set more than the metadata: the args' own options must apply", opts)
	}
	var md map[string]string
	if err := json.Unmarshal(opts.Metadata, &md); err != nil || md["traceparent"] != testTP {
		t.Errorf("metadata %s, want the traceparent", opts.Metadata)
	}
	if got := jobTraceParent(&rivertype.JobRow{Metadata: opts.Metadata}); got != testTP {
		t.Errorf("jobTraceParent = %q, want %q", got, testTP)
	}
	for _, tp := range []string{"", "garbage"} {
		if opts := insertOpts(eventstore.Event{Metadata: eventstore.Metadata{TraceParent: tp}}); opts != nil {
			t.Errorf("insert options %+v for traceparent %q, want none", opts, tp)
		}
	}
	for _, md := range []string{"{}", "", "not json", `{"traceparent": 7}`} {
		if got := jobTraceParent(&rivertype.JobRow{Metadata: []byte(md)}); got != "" {
			t.Errorf("jobTraceParent(%q) = %q", md, got)
		}
	}
}

func TestJobSpanIsAChildOfTheEnqueuedContext(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tracer := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)).Tracer("test")
	job := &rivertype.JobRow{ID: 42, Kind: "dither", Attempt: 2, Queue: "default", Metadata: insertOpts(eventstore.Event{
		Metadata: eventstore.Metadata{TraceParent: testTP}}).Metadata}
	ctx, span := startJob(context.Background(), tracer, job)
	got := tracing.TraceParent(ctx)
	span.End()
	s := rec.Ended()[0]
	if s.Name() != "process dither" || s.SpanKind() != trace.SpanKindConsumer || s.Parent().SpanID().String() != "00f067aa0ba902b7" {
		t.Errorf("span %q kind %s parent %s", s.Name(), s.SpanKind(), s.Parent().SpanID())
	}
	if want := "00-4bf92f3577b34da6a3ce929d0e0e4736-" + s.SpanContext().SpanID().String() + "-01"; got != want {
		t.Errorf("the job's context is %q, want its span's %q", got, want)
	}
	// Without a tracer the job still passes its trace context on.
	ctx, _ = startJob(context.Background(), nil, job)
	if got := tracing.TraceParent(ctx); got != testTP {
		t.Errorf("without a tracer the job's context is %q, want %q", got, testTP)
	}
}
