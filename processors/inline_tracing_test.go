package processors_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/imageservice/imageservice/commands"
	"github.com/imageservice/imageservice/eventstore"
	"github.com/imageservice/imageservice/images"
	"github.com/imageservice/imageservice/internal/teststores"
	"github.com/imageservice/imageservice/processors"
)

// The inline processor (the embedded default's, on SQLite) dithers in a
// span that is a child of the DitherRequested event's trace context, and
// DitherCompleted records that span as its trace parent.
func TestInlineProcessorContinuesTheTrace(t *testing.T) {
	const incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	lite := teststores.NewSQLite(t)
	store, blobs := lite.Store, lite.Blobs
	cmds := commands.New(commands.SQLite{Store: store, Blobs: blobs}, commands.Options{AutoDither: true})
	res, err := cmds.Upload(ctx, commands.UploadInput{Body: bytes.NewReader(testPNG(t)), Filename: "a.png",
		Metadata: eventstore.Metadata{TraceParent: incoming}})
	if err != nil {
		t.Fatal(err)
	}
	rec := tracetest.NewSpanRecorder()
	p := processors.NewInline(store, cmds, blobs, processors.Config{Concurrency: 1,
		TracerProvider: sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))})
	run, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = p.Run(run, &eventstore.Runner{Store: store}) }()
	defer func() { stop(); <-done }()

	// The span ends just after the outcome is recorded: wait for both.
	var completed eventstore.Event
	var spans []sdktrace.ReadOnlySpan
	for completed.ID == [16]byte{} || len(spans) == 0 {
		if ctx.Err() != nil {
			t.Fatal("the dither did not complete within a minute")
		}
		time.Sleep(20 * time.Millisecond)
		events, err := store.ReadStream(ctx, images.StreamID(res.Image.ID), 0, 10)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range events {
			if e.Type == images.TypeDitherCompleted {
				completed = e
			}
		}
		spans = spans[:0]
		for _, s := range rec.Ended() {
			if s.Name() == "process dither" {
				spans = append(spans, s)
			}
		}
	}
	if len(spans) != 1 {
		t.Fatalf("%d dither spans, want 1", len(spans))
	}
	s := spans[0]
	if s.Parent().SpanID().String() != "00f067aa0ba902b7" || s.SpanContext().TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Errorf("the dither span is not a child of %s: parent %s", incoming, s.Parent().SpanID())
	}
	want := "00-4bf92f3577b34da6a3ce929d0e0e4736-" + s.SpanContext().SpanID().String() + "-01"
	if completed.Metadata.TraceParent != want {
		t.Errorf("DitherCompleted records %q, want the dither span's %q", completed.Metadata.TraceParent, want)
	}
}
