package tracing_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/imageservice/imageservice/internal/testnet"
	"github.com/imageservice/imageservice/tracing"
)

// TestClientTransport: each request gets a client span, child of the
// request's, that names the host and the status but not the path or the
// query, and the server receives no trace context.
func TestClientTransport(t *testing.T) {
	var sent http.Header
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sent = r.Header.Clone()
		if r.URL.Path == "/fail" {
			w.WriteHeader(http.StatusBadGateway)
		}
	}))
	defer srv.Close()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	client := &http.Client{Transport: tracing.ClientTransport(tp, nil, "webhook")}
	ctx := tracing.WithTraceParent(context.Background(), incoming)

	for _, path := range []string{"/hook/secret-token?token=abc", "/fail"} {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+path, nil)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := sent.Get("traceparent"); got != "" {
			t.Errorf("the server received traceparent %q", got)
		}
	}
	spans := rec.Ended()
	if len(spans) != 2 {
		t.Fatalf("%d spans, want 2", len(spans))
	}
	host, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	for i, s := range spans {
		if s.Name() != "POST webhook" || s.SpanKind() != trace.SpanKindClient || s.Parent().SpanID().String() != parentID {
			t.Errorf("span %q kind %s parent %s", s.Name(), s.SpanKind(), s.Parent().SpanID())
		}
		attrs := map[string]string{}
		for _, a := range s.Attributes() {
			attrs[string(a.Key)] = a.Value.Emit()
			if strings.Contains(a.Value.Emit(), "secret") || strings.Contains(a.Value.Emit(), "token") {
				t.Errorf("attribute %s = %q holds the URL's path or query", a.Key, a.Value.Emit())
			}
		}
		wantStatus := []string{"200", "502"}[i]
		if attrs["server.address"] != host || attrs["server.port"] != port || attrs["http.request.method"] != "POST" ||
			attrs["http.response.status_code"] != wantStatus {
			t.Errorf("span %d attributes %v", i, attrs)
		}
		if wantErr := i == 1; (s.Status().Code == codes.Error) != wantErr || (attrs["error.type"] == "502") != wantErr {
			t.Errorf("span %d status %v, error.type %q", i, s.Status(), attrs["error.type"])
		}
	}
}

// TestClientTransportError: a request that gets no answer ends its span
// with an error status and the error's type.
func TestClientTransportError(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	client := &http.Client{Transport: tracing.ClientTransport(tp, nil, "cloudinary")}
	if _, err := client.Post("http://"+testnet.FreeAddr(t)+"/v1_1/demo/image/upload", "text/plain", nil); err == nil {
		t.Fatal("a request to a closed port succeeded")
	}
	s := rec.Ended()[0]
	attrs := map[string]string{}
	for _, a := range s.Attributes() {
		attrs[string(a.Key)] = a.Value.Emit()
	}
	if s.Name() != "POST cloudinary" || s.Status().Code != codes.Error || attrs["error.type"] == "" || attrs["http.response.status_code"] != "" {
		t.Errorf("span %q status %v attributes %v", s.Name(), s.Status(), attrs)
	}
}

// Without a recording provider the transport is the base itself.
func TestClientTransportOffWithoutTracing(t *testing.T) {
	base := &http.Transport{}
	for _, tp := range []trace.TracerProvider{nil, noop.NewTracerProvider()} {
		if got := tracing.ClientTransport(tp, base, "webhook"); got != http.RoundTripper(base) {
			t.Errorf("ClientTransport(%T) = %T, want the base", tp, got)
		}
	}
}
