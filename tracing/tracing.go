// Package tracing sets up OpenTelemetry tracing and carries W3C trace
// context across the places where the service's work leaves one goroutine
// for another: HTTP requests, the event log's metadata, job rows and
// broker messages.
//
// New exports spans over OTLP when OTEL_EXPORTER_OTLP_ENDPOINT (or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is set, through a batch span
// processor, so a slow or unreachable collector never holds up a request:
// spans wait in a bounded queue and are dropped when it is full. With no
// endpoint it creates no exporter and hands out a no-op tracer provider,
// whose spans cost next to nothing; the trace context a request arrived
// with is still passed on into event metadata and broker messages.
//
// The event log records, with each event, the traceparent of the span
// that appended it (TraceParent). Whatever reacts to the event later (a
// dither job, a Cloudinary sync, a notification, the bridge) starts its
// span as a child of that context (WithTraceParent), so one trace follows
// a mutation through its processors and onto the broker.
package tracing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/http/httpguts"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// DefaultServiceName is the service.name of exported spans unless
// OTEL_SERVICE_NAME (or service.name in OTEL_RESOURCE_ATTRIBUTES) says otherwise.
const DefaultServiceName = "imageservice"

// Protocols of OTEL_EXPORTER_OTLP_PROTOCOL that New accepts; the default
// is ProtocolHTTPProtobuf.
const (
	ProtocolHTTPProtobuf = "http/protobuf"
	ProtocolHTTPJSON     = "http/json"
	ProtocolGRPC         = "grpc"
)

// Options configure New.
type Options struct {
	// Getenv looks up the variables that decide whether and where spans
	// are exported: OTEL_SDK_DISABLED, OTEL_EXPORTER_OTLP_ENDPOINT,
	// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, OTEL_EXPORTER_OTLP_PROTOCOL and
	// OTEL_EXPORTER_OTLP_TRACES_PROTOCOL (default os.Getenv). The exporter,
	// the sampler and the resource read their other standard OTEL_*
	// variables (headers, timeout, TLS, compression, OTEL_TRACES_SAMPLER,
	// OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES, OTEL_BSP_*) from the
	// process environment themselves.
	Getenv func(string) string
	// Logger receives the set-up message and export failures, at most one
	// failure every ErrorLogInterval (default slog.Default()).
	Logger *slog.Logger
}

// ErrorLogInterval spaces the logged export failures, so that a collector
// that is down does not flood the log.
const ErrorLogInterval = time.Minute

// Provider is the service's tracer provider: an SDK provider that exports
// over OTLP, or a no-op one.
type Provider struct {
	tp  trace.TracerProvider
	sdk *sdktrace.TracerProvider
}

// Disabled returns a Provider that records and exports nothing.
func Disabled() *Provider { return &Provider{tp: noop.NewTracerProvider()} }

// New returns the tracer provider the environment asks for: one that
// exports over OTLP (HTTP, or gRPC with OTEL_EXPORTER_OTLP_PROTOCOL=grpc)
// when an OTLP endpoint is set and OTEL_SDK_DISABLED is not true, else
// Disabled(). An endpoint it cannot use is an error that names the
// variable without echoing its value, which may hold credentials. An
// exporting provider installs OpenTelemetry's global error handler, which
// logs failed exports to opts.Logger.
func New(ctx context.Context, opts Options) (*Provider, error) {
	getenv := opts.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	if v := getenv("OTEL_SDK_DISABLED"); v != "" {
		disabled, err := strconv.ParseBool(v)
		if err != nil {
			return nil, fmt.Errorf("OTEL_SDK_DISABLED must be true or false, not %q", v)
		}
		if disabled {
			return Disabled(), nil
		}
	}
	endpoint, setting := firstSet(getenv, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
	if endpoint == "" {
		return Disabled(), nil
	}
	target, err := url.Parse(endpoint)
	if err != nil || (target.Scheme != "http" && target.Scheme != "https") || target.Host == "" || target.RawQuery != "" {
		return nil, fmt.Errorf("%s must be an http(s) URL without a query, such as http://collector:4318", setting)
	}
	for _, name := range []string{"OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_TRACES_HEADERS"} {
		if err := checkHeaders(getenv(name)); err != nil {
			return nil, fmt.Errorf("%s %w", name, err)
		}
	}
	protocol, protoSetting := firstSet(getenv, "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")
	if protocol == "" {
		protocol = ProtocolHTTPProtobuf
	}
	if setting == "OTEL_EXPORTER_OTLP_ENDPOINT" && protocol != ProtocolGRPC {
		// A base URL: the traces are sent to its path plus /v1/traces.
		target.Path = strings.TrimSuffix(target.Path, "/") + "/v1/traces"
	}
	exporter, err := newExporter(ctx, protocol, target.String())
	if errors.Is(err, errProtocol) {
		return nil, fmt.Errorf("%s must be %s, %s or %s, not %q", protoSetting, ProtocolHTTPProtobuf, ProtocolHTTPJSON, ProtocolGRPC, protocol)
	}
	if err != nil {
		return nil, fmt.Errorf("tracing: OTLP exporter: %w", err)
	}
	res, err := resource.New(ctx,
		resource.WithTelemetrySDK(),
		resource.WithAttributes(attribute.String("service.name", DefaultServiceName)),
		resource.WithFromEnv(), // OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME win
	)
	if err != nil {
		// A malformed OTEL_RESOURCE_ATTRIBUTES: the rest still describes the service.
		log.Warn("tracing: some resource attributes were left out", "err", err)
	}
	otel.SetErrorHandler(&errorLog{log: log})
	sdk := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exporter), sdktrace.WithResource(res))
	log.Info("tracing: exporting spans over OTLP", "protocol", protocol, "endpoint", target.Scheme+"://"+target.Host)
	return &Provider{tp: sdk, sdk: sdk}, nil
}

var errProtocol = errors.New("unknown OTLP protocol")

// newExporter returns the OTLP exporter of a protocol that sends to
// endpoint. It reads its other settings from the environment.
func newExporter(ctx context.Context, protocol, endpoint string) (sdktrace.SpanExporter, error) {
	switch protocol {
	case ProtocolHTTPProtobuf, ProtocolHTTPJSON:
		opts := []otlptracehttp.Option{otlptracehttp.WithEncoding(otlptracehttp.EncodingProtobuf)}
		if protocol == ProtocolHTTPJSON {
			opts[0] = otlptracehttp.WithEncoding(otlptracehttp.EncodingJSON)
		}
		return otlptracehttp.New(ctx, append(opts, otlptracehttp.WithEndpointURL(endpoint))...)
	case ProtocolGRPC:
		return otlptracegrpc.New(ctx, otlptracegrpc.WithEndpointURL(endpoint))
	}
	return nil, errProtocol
}

// checkHeaders checks an OTLP headers setting as the exporter will parse
// it: comma-separated name=value pairs, names HTTP tokens, values
// URL-encoded. The exporter logs a pair it cannot parse, value and all,
// and drops it; the error here says which pair without echoing it, since
// the values are credentials.
func checkHeaders(v string) error {
	if strings.TrimSpace(v) == "" {
		return nil
	}
	for i, pair := range strings.Split(v, ",") {
		name, value, found := strings.Cut(pair, "=")
		_, err := url.PathUnescape(value)
		if !found || !httpguts.ValidHeaderFieldName(strings.TrimSpace(name)) || err != nil {
			return fmt.Errorf("must be comma-separated name=value pairs with URL-encoded values; pair %d is not", i+1)
		}
	}
	return nil
}

// firstSet returns the value and name of the first of the variables that is set.
func firstSet(getenv func(string) string, names ...string) (string, string) {
	for _, n := range names {
		if v := strings.TrimSpace(getenv(n)); v != "" {
			return v, n
		}
	}
	return "", names[len(names)-1]
}

// TracerProvider returns the provider to start spans with.
func (p *Provider) TracerProvider() trace.TracerProvider { return p.tp }

// Exporting reports whether spans are exported.
func (p *Provider) Exporting() bool { return p.sdk != nil }

// ForceFlush exports the spans that have ended and are still queued.
func (p *Provider) ForceFlush(ctx context.Context) error {
	if p.sdk == nil {
		return nil
	}
	if err := p.sdk.ForceFlush(ctx); err != nil {
		return fmt.Errorf("tracing: flush: %w", err)
	}
	return nil
}

// Shutdown exports the queued spans, waiting until ctx ends at most, and
// stops the exporter. Spans started afterwards are dropped.
func (p *Provider) Shutdown(ctx context.Context) error {
	if p.sdk == nil {
		return nil
	}
	if err := p.sdk.Shutdown(ctx); err != nil {
		return fmt.Errorf("tracing: shut down: %w", err)
	}
	return nil
}

// Enabled reports whether spans started with tp may be recorded: false for
// nil and for a no-op provider, so that callers can skip instrumentation
// that would only cost time.
func Enabled(tp trace.TracerProvider) bool {
	switch tp.(type) {
	case nil, noop.TracerProvider:
		return false
	}
	return true
}

// Tracer returns the named tracer of tp, or a no-op tracer when tp is nil.
func Tracer(tp trace.TracerProvider, name string) trace.Tracer {
	if tp == nil {
		return noop.NewTracerProvider().Tracer(name)
	}
	return tp.Tracer(name)
}

// End ends span, recording err and an error status when err is not nil.
func End(span trace.Span, err error) {
	if err != nil && span.IsRecording() {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// errorLog logs the SDK's errors (failed exports), at most one every
// ErrorLogInterval, with how many were left out in between. Export errors
// name the endpoint at most, never the request's headers.
type errorLog struct {
	log *slog.Logger

	mu      sync.Mutex
	last    time.Time
	skipped int
}

// Handle implements otel.ErrorHandler.
func (e *errorLog) Handle(err error) {
	if err == nil {
		return
	}
	e.mu.Lock()
	now := time.Now()
	if !e.last.IsZero() && now.Sub(e.last) < ErrorLogInterval {
		e.skipped++
		e.mu.Unlock()
		return
	}
	skipped := e.skipped
	e.last, e.skipped = now, 0
	e.mu.Unlock()
	e.log.Warn("tracing: spans not exported", "err", err, "similar_errors_not_logged", skipped)
}
