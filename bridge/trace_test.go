package bridge

import (
	"context"
	"errors"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/imageservice/imageservice/images"
)

// recordingSink keeps what it was asked to publish and fails when told to.
type recordingSink struct {
	got  []Message
	fail error
}

func (s *recordingSink) Name() string { return "test" }
func (s *recordingSink) Close() error { return nil }
func (s *recordingSink) Publish(_ context.Context, msgs []Message) error {
	s.got = append(s.got, msgs...)
	return s.fail
}

const (
	testTraceID  = "4bf92f3577b34da6a3ce929d0e0e4736"
	testParentID = "00f067aa0ba902b7"
	testTP       = "00-" + testTraceID + "-" + testParentID + "-01"
)

// tracedMessages maps an upload with a trace context and one without.
func tracedMessages(t *testing.T) []Message {
	t.Helper()
	e := event(t, images.ImageUploaded{ImageID: testImage, Filename: "cat.png", SHA256: "abc"}, 1)
	e.Metadata.TraceParent = testTP
	traced, err := testMapper().Map(e, images.Image{})
	if err != nil {
		t.Fatal(err)
	}
	untraced, err := testMapper().Map(event(t, images.ImageUploaded{ImageID: testImage, Filename: "cat.png", SHA256: "abc"}, 1), images.Image{})
	if err != nil {
		t.Fatal(err)
	}
	return append(traced, untraced...)
}

func TestTracedSinkSpansAndHeaders(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	inner := &recordingSink{}
	sink := Traced(inner, sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)))
	msgs := tracedMessages(t)
	if err := sink.Publish(context.Background(), msgs); err != nil {
		t.Fatal(err)
	}
	if sink.Name() != "test" {
		t.Errorf("Name() = %s, want the inner sink's", sink.Name())
	}
	spans := rec.Ended()
	if len(spans) != 2 || len(inner.got) != 4 {
		t.Fatalf("%d spans and %d messages, want a span for each of the 2 traced messages of 4", len(spans), len(inner.got))
	}
	for i, s := range spans {
		m := inner.got[i]
		if s.Name() != "send "+m.Topic || s.SpanKind() != trace.SpanKindProducer ||
			s.Parent().SpanID().String() != testParentID || s.SpanContext().TraceID().String() != testTraceID {
			t.Errorf("span %q kind %s parent %s trace %s", s.Name(), s.SpanKind(), s.Parent().SpanID(), s.SpanContext().TraceID())
		}
		want := "00-" + testTraceID + "-" + s.SpanContext().SpanID().String() + "-01"
		if got := m.Header("traceparent"); got != want {
			t.Errorf("message %s traceparent header %q, want its span's %q", m.ID, got, want)
		}
	}
	if got := inner.got[0].Header("ce_traceparent"); got != testTP {
		t.Errorf("ce_traceparent %q, want the event's %q", got, testTP)
	}
	for _, m := range inner.got[2:] {
		if m.Header("traceparent") != "" {
			t.Errorf("message %s of an untraced event has a traceparent header", m.ID)
		}
	}
	for _, m := range msgs {
		if m.Header("traceparent") != "" {
			t.Error("Publish changed its caller's messages")
		}
	}
}

func TestTracedSinkMarksFailedPublishes(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	sink := Traced(&recordingSink{fail: errors.New("broker down")}, sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)))
	if err := sink.Publish(context.Background(), tracedMessages(t)); err == nil {
		t.Fatal("the inner sink's error was lost")
	}
	for _, s := range rec.Ended() {
		if s.Status().Code.String() != "Error" {
			t.Errorf("span %s has status %s after a failed publish", s.Name(), s.Status().Code)
		}
	}
}

func TestTracedSinkWithoutTracingPassesTheEventsContext(t *testing.T) {
	for _, tp := range []trace.TracerProvider{nil, noop.NewTracerProvider()} {
		inner := &recordingSink{}
		if err := Traced(inner, tp).Publish(context.Background(), tracedMessages(t)); err != nil {
			t.Fatal(err)
		}
		if got := inner.got[0].Header("traceparent"); got != testTP {
			t.Errorf("traceparent header %q, want the event's %q", got, testTP)
		}
		if got := inner.got[2].Header("traceparent"); got != "" {
			t.Errorf("untraced message got traceparent %q", got)
		}
	}
}
