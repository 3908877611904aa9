package tracing

import (
	"net/http"
	"strings"

	"github.com/google/uuid"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Middleware starts a server span for every request but the probes and
// the metrics scrape (/healthz, /readyz, /metrics), as a child of the
// request's traceparent header when it has one. With a provider that
// records nothing (Enabled false) it only reads the traceparent header
// into the request's context, so that the caller's trace context still
// reaches event metadata.
func Middleware(tp trace.TracerProvider, next http.Handler) http.Handler {
	if !Enabled(tp) {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get(HeaderTraceParent) != "" {
				r = r.WithContext(Propagator.Extract(r.Context(), propagation.HeaderCarrier(r.Header)))
			}
			next.ServeHTTP(w, r)
		})
	}
	return otelhttp.NewHandler(next, "http.server",
		otelhttp.WithTracerProvider(tp),
		otelhttp.WithPropagators(Propagator),
		otelhttp.WithMeterProvider(noop.NewMeterProvider()), // metrics are Prometheus's (package metrics)
		otelhttp.WithFilter(func(r *http.Request) bool { return !probe(r.URL.Path) }),
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return r.Method + " " + Route(r.URL.Path) }),
	)
}

// probe reports the paths that get no span: health checks and metrics
// scrapes come every few seconds and say nothing about the service's work.
func probe(path string) bool {
	return path == "/healthz" || path == "/readyz" || path == "/metrics"
}

// Route is the low-cardinality form of a request path used in span names:
// blob and thumbnail keys become {key}, uuids {id}, numbers {n}, and paths
// outside the service's routes (the web frontend's files, strays) "/*".
func Route(path string) string {
	switch {
	case path == "/" || path == "/query" || path == "/graphiql":
		return path
	case strings.HasPrefix(path, "/blobs/"):
		return "/blobs/{key}"
	case strings.HasPrefix(path, "/thumbs/"):
		return "/thumbs/{key}"
	case strings.HasPrefix(path, "/compat/"):
		parts := strings.Split(path, "/")
		for i, p := range parts {
			if _, err := uuid.Parse(p); err == nil {
				parts[i] = "{id}"
			} else if p != "" && strings.Trim(p, "0123456789") == "" {
				parts[i] = "{n}"
			}
		}
		return strings.Join(parts, "/")
	}
	return "/*"
}
