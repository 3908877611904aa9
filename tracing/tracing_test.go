package tracing_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"

	"github.com/imageservice/imageservice/internal/testnet"
	"github.com/imageservice/imageservice/tracing"
	"github.com/imageservice/imageservice/tracing/tracingtest"
)

const (
	traceID  = "4bf92f3577b34da6a3ce929d0e0e4736"
	parentID = "00f067aa0ba902b7"
	incoming = "00-" + traceID + "-" + parentID + "-01"
)

// envOf is a Getenv that reads only the given variables.
func envOf(vars map[string]string) func(string) string {
	return func(name string) string { return vars[name] }
}

func TestTraceParentRoundTrip(t *testing.T) {
	for _, tp := range []string{incoming, "00-" + traceID + "-" + parentID + "-00"} {
		ctx := tracing.WithTraceParent(context.Background(), tp)
		if got := tracing.TraceParent(ctx); got != tp {
			t.Errorf("TraceParent(WithTraceParent(%s)) = %q", tp, got)
		}
		if !trace.SpanContextFromContext(ctx).IsRemote() {
			t.Errorf("the context of %s is not remote", tp)
		}
	}
}

func TestWithTraceParentIgnoresMalformed(t *testing.T) {
	for _, tp := range []string{
		"", "garbage", "00-" + traceID + "-" + parentID, // no flags
		"00-00000000000000000000000000000000-" + parentID + "-01", // zero trace id
		"00-" + traceID + "-0000000000000000-01",                  // zero span id
		"ff-" + traceID + "-" + parentID + "-01",                  // forbidden version
		"00-" + strings.ToUpper(traceID) + "-" + parentID + "-01", // upper case
		"00-" + traceID + "-" + parentID + "-01\n",
	} {
		ctx := tracing.WithTraceParent(context.Background(), tp)
		if got := tracing.TraceParent(ctx); got != "" {
			t.Errorf("WithTraceParent(%q) gave the context %q", tp, got)
		}
		if _, ok := tracing.Parse(tp); ok {
			t.Errorf("Parse(%q) accepted it", tp)
		}
	}
	// A malformed traceparent leaves the span already in ctx in place.
	ctx := tracing.WithTraceParent(tracing.WithTraceParent(context.Background(), incoming), "garbage")
	if got := tracing.TraceParent(ctx); got != incoming {
		t.Errorf("a malformed traceparent replaced the context: %q", got)
	}
}

func TestChildSpanContinuesTheTrace(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	ctx, span := tp.Tracer("test").Start(tracing.WithTraceParent(context.Background(), incoming), "work")
	got := tracing.TraceParent(ctx)
	span.End()
	ended := rec.Ended()
	if len(ended) != 1 {
		t.Fatalf("%d spans ended, want 1", len(ended))
	}
	s := ended[0]
	if s.Parent().SpanID().String() != parentID || s.SpanContext().TraceID().String() != traceID {
		t.Errorf("span %s has parent %s, want a child of %s", s.SpanContext().TraceID(), s.Parent().SpanID(), incoming)
	}
	want := "00-" + traceID + "-" + s.SpanContext().SpanID().String() + "-01"
	if got != want {
		t.Errorf("TraceParent of the child = %q, want %q", got, want)
	}
}

func TestNoOpProviderPassesTheContextThrough(t *testing.T) {
	tracer := tracing.Disabled().TracerProvider().Tracer("test")
	ctx, _ := tracer.Start(tracing.WithTraceParent(context.Background(), incoming), "work")
	if got := tracing.TraceParent(ctx); got != incoming {
		t.Errorf("a no-op span gave the context %q, want the parent's %q", got, incoming)
	}
	ctx, _ = tracer.Start(context.Background(), "root")
	if got := tracing.TraceParent(ctx); got != "" {
		t.Errorf("a no-op root span gave the context %q, want none", got)
	}
}

func TestNoEndpointNoExporter(t *testing.T) {
	col := tracingtest.New(t)
	for name, vars := range map[string]map[string]string{
		"nothing set":    {},
		"SDK disabled":   {"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": col.BaseURL()},
		"protocol alone": {"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_SERVICE_NAME": "x"},
	} {
		t.Run(name, func(t *testing.T) {
			p, err := tracing.New(context.Background(), tracing.Options{Getenv: envOf(vars)})
			if err != nil {
				t.Fatal(err)
			}
			if p.Exporting() || tracing.Enabled(p.TracerProvider()) {
				t.Fatal("an exporter was created without an endpoint")
			}
			if _, ok := p.TracerProvider().(noop.TracerProvider); !ok {
				t.Fatalf("provider %T, want the no-op one", p.TracerProvider())
			}
			_, span := p.TracerProvider().Tracer("test").Start(context.Background(), "work")
			if span.IsRecording() {
				t.Error("a span is recording")
			}
			span.End()
			if err := p.ForceFlush(context.Background()); err != nil {
				t.Fatal(err)
			}
			if err := p.Shutdown(context.Background()); err != nil {
				t.Fatal(err)
			}
		})
	}
	if n := col.Requests(); n != 0 {
		t.Errorf("the collector got %d requests", n)
	}
}

func TestBadSettingsAreRefusedWithoutEchoingThem(t *testing.T) {
	for name, c := range map[string]struct {
		vars    map[string]string
		mention string
	}{
		"endpoint without a scheme": {map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "user:s3cret@collector:4318"}, "OTEL_EXPORTER_OTLP_ENDPOINT"},
		"traces endpoint, bad":      {map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "ftp://s3cret@x"}, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"},
		"unknown protocol": {map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318",
			"OTEL_EXPORTER_OTLP_PROTOCOL": "carrier-pigeon"}, "OTEL_EXPORTER_OTLP_PROTOCOL"},
		"bad SDK switch": {map[string]string{"OTEL_SDK_DISABLED": "maybe"}, "OTEL_SDK_DISABLED"},
		"headers without =": {map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318",
			"OTEL_EXPORTER_OTLP_HEADERS": "x-team=a,Authorization: Bearer s3cret"}, "OTEL_EXPORTER_OTLP_HEADERS"},
		"headers badly escaped": {map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318",
			"OTEL_EXPORTER_OTLP_TRACES_HEADERS": "Authorization=Bearer%zzs3cret"}, "OTEL_EXPORTER_OTLP_TRACES_HEADERS"},
		"header name not a token": {map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318",
			"OTEL_EXPORTER_OTLP_HEADERS": "Auth s3cret=x"}, "OTEL_EXPORTER_OTLP_HEADERS"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := tracing.New(context.Background(), tracing.Options{Getenv: envOf(c.vars)})
			if err == nil || !strings.Contains(err.Error(), c.mention) {
				t.Fatalf("err = %v, want one naming %s", err, c.mention)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("the error echoes the value: %v", err)
			}
		})
	}
}

// exportOne exports one span through a provider made from vars and
// returns it as the collector saw it.
func exportOne(t *testing.T, vars map[string]string, spans func() []tracingtest.Span) tracingtest.Span {
	t.Helper()
	var logs bytes.Buffer
	p, err := tracing.New(context.Background(), tracing.Options{Getenv: envOf(vars), Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if !p.Exporting() {
		t.Fatal("no exporter with an endpoint set")
	}
	ctx, span := p.TracerProvider().Tracer("test").Start(tracing.WithTraceParent(context.Background(), incoming), "work")
	want := tracing.TraceParent(ctx)
	span.End()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	got := spans()
	if len(got) != 1 {
		t.Fatalf("the collector got %d spans, want 1", len(got))
	}
	if s := got[0]; "00-"+s.TraceID+"-"+s.SpanID+"-01" != want || s.ParentSpanID != parentID || s.Name != "work" {
		t.Errorf("exported span %+v, want %s, a child of %s", s, want, parentID)
	}
	if !strings.Contains(logs.String(), "exporting spans over OTLP") {
		t.Errorf("set-up not logged: %s", logs.String())
	}
	return got[0]
}

func TestExportsOverHTTP(t *testing.T) {
	t.Run("base endpoint", func(t *testing.T) {
		col := tracingtest.New(t)
		s := exportOne(t, map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": col.BaseURL()}, col.Spans)
		if s.Service != tracing.DefaultServiceName {
			t.Errorf("service.name = %q, want %q", s.Service, tracing.DefaultServiceName)
		}
	})
	t.Run("traces endpoint wins", func(t *testing.T) {
		col := tracingtest.New(t)
		exportOne(t, map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1",
			"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": col.URL(), "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}, col.Spans)
	})
}

// grpcCollector is an OTLP/gRPC trace service that keeps what it gets.
type grpcCollector struct {
	coltracepb.UnimplementedTraceServiceServer
	got chan *coltracepb.ExportTraceServiceRequest
}

func (g *grpcCollector) Export(_ context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	g.got <- req
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

func TestExportsOverGRPC(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	col := &grpcCollector{got: make(chan *coltracepb.ExportTraceServiceRequest, 10)}
	coltracepb.RegisterTraceServiceServer(srv, col)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	exportOne(t, map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://" + ln.Addr().String(), "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
		func() []tracingtest.Span {
			var out []tracingtest.Span
			for {
				select {
				case req := <-col.got:
					for _, rs := range req.GetResourceSpans() {
						for _, ss := range rs.GetScopeSpans() {
							for _, s := range ss.GetSpans() {
								out = append(out, tracingtest.Span{TraceID: hexOf(s.GetTraceId()), SpanID: hexOf(s.GetSpanId()),
									ParentSpanID: hexOf(s.GetParentSpanId()), Name: s.GetName()})
							}
						}
					}
				default:
					return out
				}
			}
		})
}

func hexOf(b []byte) string { return hex.EncodeToString(b) }

func TestUnreachableCollectorDoesNotBlock(t *testing.T) {
	collector := "http://" + testnet.FreeAddr(t) // nothing listens there
	var logs bytes.Buffer
	p, err := tracing.New(context.Background(), tracing.Options{Getenv: envOf(map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": collector}),
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	tracer := p.TracerProvider().Tracer("test")
	start := time.Now()
	for range 5000 { // more than the batch processor's queue holds
		_, span := tracer.Start(context.Background(), "work")
		span.End()
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("starting and ending spans took %s with the collector down", d)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	start = time.Now()
	_ = p.Shutdown(ctx) // gives up when ctx ends
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("shutting down took %s", d)
	}
}

func TestMiddleware(t *testing.T) {
	var seen string
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			seen = tracing.TraceParent(r.Context())
		}
	})
	t.Run("disabled: the incoming context passes through", func(t *testing.T) {
		srv := tracing.Middleware(tracing.Disabled().TracerProvider(), h)
		req := httptest.NewRequest(http.MethodGet, "/query", nil)
		req.Header.Set("traceparent", incoming)
		srv.ServeHTTP(httptest.NewRecorder(), req)
		if seen != incoming {
			t.Errorf("handler saw %q, want %q", seen, incoming)
		}
		seen = "x"
		srv.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/query", nil))
		if seen != "" {
			t.Errorf("handler saw %q without a traceparent", seen)
		}
	})
	t.Run("enabled: a server span, child of the incoming context", func(t *testing.T) {
		rec := tracetest.NewSpanRecorder()
		srv := tracing.Middleware(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)), h)
		req := httptest.NewRequest(http.MethodPost, "/compat/upload/images/0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", nil)
		req.Header.Set("traceparent", incoming)
		srv.ServeHTTP(httptest.NewRecorder(), req)
		srv.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/healthz", nil))
		ended := rec.Ended()
		if len(ended) != 1 {
			t.Fatalf("%d spans, want 1 (none for /healthz)", len(ended))
		}
		s := ended[0]
		if s.Name() != "POST /compat/upload/images/{id}" || s.SpanKind() != trace.SpanKindServer || s.Parent().SpanID().String() != parentID {
			t.Errorf("span %q kind %s parent %s", s.Name(), s.SpanKind(), s.Parent().SpanID())
		}
		if want := "00-" + traceID + "-" + s.SpanContext().SpanID().String() + "-01"; seen != want {
			t.Errorf("handler saw %q, want its span's %q", seen, want)
		}
	})
}

func TestRoute(t *testing.T) {
	for path, want := range map[string]string{
		"/": "/", "/query": "/query", "/graphiql": "/graphiql", "/blobs/abc": "/blobs/{key}", "/thumbs/abc": "/thumbs/{key}",
		"/compat/dither/images/0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b/8": "/compat/dither/images/{id}/{n}",
		"/app.js": "/*", "/wp-admin/x": "/*",
	} {
		if got := tracing.Route(path); got != want {
			t.Errorf("Route(%s) = %s, want %s", path, got, want)
		}
	}
}
