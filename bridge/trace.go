package bridge

import (
	"context"
	"slices"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/imageservice/imageservice/tracing"
)

// Traced returns a Sink that publishes through s, each message of an
// event that recorded a trace context (Message.TraceParent) in a producer
// span ("send <topic>") that is a child of that context and ends once the
// broker has acknowledged the batch. The span's W3C context goes out in
// the message's traceparent header, so that a consumer's span continues
// the trace of the request that caused the event. With a provider that
// records nothing the header carries the event's own trace context.
// Messages of events without one (written outside any request, or before
// tracing) get neither a span nor the header: a root trace per message
// would say nothing.
func Traced(s Sink, tp trace.TracerProvider) Sink {
	return &tracedSink{Sink: s, tracer: tracing.Tracer(tp, "github.com/imageservice/imageservice/bridge")}
}

type tracedSink struct {
	Sink
	tracer trace.Tracer
}

// Unwrap returns the sink that Traced wraps (see PingerOf).
func (s *tracedSink) Unwrap() Sink { return s.Sink }

// Publish implements Sink.
func (s *tracedSink) Publish(ctx context.Context, msgs []Message) error {
	spans := make([]trace.Span, len(msgs))
	out := make([]Message, len(msgs))
	for i, m := range msgs {
		out[i] = m
		if m.TraceParent == "" {
			continue
		}
		spanCtx, span := s.tracer.Start(tracing.WithTraceParent(ctx, m.TraceParent), "send "+m.Topic,
			trace.WithSpanKind(trace.SpanKindProducer), trace.WithAttributes(
				attribute.String("messaging.system", s.Name()),
				attribute.String("messaging.operation.type", "send"),
				attribute.String("messaging.destination.name", m.Topic),
				attribute.String("messaging.message.id", m.ID),
			))
		if t := m.Header("message_type"); t != "" && span.IsRecording() {
			span.SetAttributes(attribute.String("imageservice.message_type", t))
		}
		if tp := tracing.TraceParent(spanCtx); tp != "" {
			m.Headers = append(slices.Clip(m.Headers), Header{tracing.HeaderTraceParent, tp})
		}
		spans[i], out[i] = span, m
	}
	err := s.Sink.Publish(ctx, out)
	for _, span := range spans {
		if span != nil {
			tracing.End(span, err)
		}
	}
	return err
}
