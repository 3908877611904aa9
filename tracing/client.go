package tracing

import (
	"fmt"
	"net/http"
	"strconv"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// ClientTransport returns base (nil: http.DefaultTransport) with a client
// span around every request, until its answer's headers arrive, named
// "<METHOD> <peer>" ("POST webhook"), a child of the request context's
// span. The span names the server's host, never the URL's path or query
// (webhook URLs often hold tokens), and no trace context is sent to the
// server: peer is a third party, not one of our services. With a provider
// that records nothing (Enabled false) it returns base as it is.
func ClientTransport(tp trace.TracerProvider, base http.RoundTripper, peer string) http.RoundTripper {
	if !Enabled(tp) {
		return base
	}
	if base == nil {
		base = http.DefaultTransport
	}
	return &clientTransport{base: base, peer: peer, tracer: tp.Tracer("github.com/imageservice/imageservice/tracing")}
}

type clientTransport struct {
	base   http.RoundTripper
	peer   string
	tracer trace.Tracer
}

// RoundTrip implements http.RoundTripper.
func (t *clientTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	attrs := []attribute.KeyValue{
		attribute.String("http.request.method", req.Method),
		attribute.String("server.address", req.URL.Hostname()),
	}
	if port := req.URL.Port(); port != "" {
		if n, err := strconv.Atoi(port); err == nil {
			attrs = append(attrs, attribute.Int("server.port", n))
		}
	}
	ctx, span := t.tracer.Start(req.Context(), req.Method+" "+t.peer,
		trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
	resp, err := t.base.RoundTrip(req.WithContext(ctx))
	if err != nil {
		// A transport's error names the address at most; http.Client adds
		// the URL later, outside this span.
		span.SetAttributes(attribute.String("error.type", errorType(err)))
		End(span, err)
		return nil, err
	}
	span.SetAttributes(attribute.Int("http.response.status_code", resp.StatusCode))
	if resp.StatusCode >= 400 {
		span.SetAttributes(attribute.String("error.type", strconv.Itoa(resp.StatusCode)))
		span.SetStatus(codes.Error, http.StatusText(resp.StatusCode))
	}
	span.End()
	return resp, nil
}

// errorType is the Go type of err, the semantic conventions' error.type
// for errors without a better name.
func errorType(err error) string { return fmt.Sprintf("%T", err) }
