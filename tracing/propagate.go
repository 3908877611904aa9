package tracing

import (
	"context"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Propagator reads and writes W3C trace context (the traceparent and
// tracestate headers). Baggage is not propagated: requests come from the
// internet, and nothing here reads it.
var Propagator propagation.TextMapPropagator = propagation.TraceContext{}

// HeaderTraceParent is the W3C trace context header, in HTTP requests and
// broker messages.
const HeaderTraceParent = "traceparent"

// TraceParent returns the W3C traceparent of the span in ctx
// ("00-<trace id>-<span id>-<flags>"), or "" when ctx holds no valid span
// context. It is what event metadata records: the span that wrote the event.
func TraceParent(ctx context.Context) string {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return ""
	}
	carrier := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(trace.ContextWithSpanContext(context.Background(), sc), carrier)
	return carrier[HeaderTraceParent]
}

// WithTraceParent returns ctx with the span context of a W3C traceparent
// as its remote parent, so that the next span started from it continues
// that trace. An empty or malformed traceparent leaves ctx as it is.
func WithTraceParent(ctx context.Context, traceparent string) context.Context {
	sc, ok := Parse(traceparent)
	if !ok {
		return ctx
	}
	return trace.ContextWithRemoteSpanContext(ctx, sc)
}

// Parse reads a W3C traceparent, reporting whether it is well-formed with
// a valid trace and span id.
func Parse(traceparent string) (trace.SpanContext, bool) {
	if traceparent == "" {
		return trace.SpanContext{}, false
	}
	ctx := propagation.TraceContext{}.Extract(context.Background(), propagation.MapCarrier{HeaderTraceParent: traceparent})
	sc := trace.SpanContextFromContext(ctx)
	return sc, sc.IsValid()
}
