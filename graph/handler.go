package graph

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/99designs/gqlgen/graphql/playground"
	"github.com/vektah/gqlparser/v2/ast"
)

// HandlerOptions tune the GraphQL endpoint.
type HandlerOptions struct {
	// MaxUploadBytes caps a multipart request (default 26 MiB: a 25 MiB file and its form).
	MaxUploadBytes int64
	// MaxBodyBytes caps any other request body (default 1 MiB).
	MaxBodyBytes int64
	// ComplexityLimit caps a query's complexity (default 1000).
	ComplexityLimit int
}

func (o HandlerOptions) withDefaults() HandlerOptions {
	if o.MaxUploadBytes <= 0 {
		o.MaxUploadBytes = 26 << 20
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = 1 << 20
	}
	if o.ComplexityLimit <= 0 {
		o.ComplexityLimit = 1000
	}
	return o
}

// NewHandler returns the GraphQL endpoint: POST, GET (queries only),
// multipart uploads, websockets (graphql-transport-ws and the legacy
// graphql-ws, with keep-alive pings and an init timeout) and SSE, all on
// one path.
func NewHandler(r *Resolver, opts HandlerOptions) http.Handler {
	opts = opts.withDefaults()
	if r.Logger == nil {
		r.Logger = slog.Default()
	}
	srv := handler.New(NewExecutableSchema(Config{Resolvers: r}))
	srv.AddTransport(transport.Websocket{
		KeepAlivePingInterval: 15 * time.Second,
		PingPongInterval:      30 * time.Second,
		InitTimeout:           10 * time.Second,
	})
	srv.AddTransport(transport.SSE{})
	srv.AddTransport(transport.Options{})
	srv.AddTransport(transport.GET{})
	srv.AddTransport(transport.POST{})
	srv.AddTransport(transport.MultipartForm{MaxUploadSize: opts.MaxUploadBytes, MaxMemory: 8 << 20})
	srv.SetQueryCache(lru.New[*ast.QueryDocument](1000))
	srv.Use(extension.Introspection{})
	srv.Use(extension.AutomaticPersistedQuery{Cache: lru.New[string](1000)})
	srv.Use(extension.FixedComplexityLimit(opts.ComplexityLimit))
	srv.SetErrorPresenter(presentError(r.Logger))
	srv.SetRecoverFunc(recoverPanic(r.Logger))
	return withRequestMetadata(limitBody(srv, opts))
}

// limitBody caps request bodies: multipart uploads at MaxUploadBytes,
// everything else at MaxBodyBytes.
func limitBody(next http.Handler, opts HandlerOptions) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		limit := opts.MaxBodyBytes
		if ct := r.Header.Get("Content-Type"); len(ct) >= 19 && ct[:19] == "multipart/form-data" {
			limit = opts.MaxUploadBytes
		}
		if r.Body != nil {
			r.Body = http.MaxBytesReader(w, r.Body, limit)
		}
		next.ServeHTTP(w, r)
	})
}

// GraphiQL returns the GraphiQL page for the endpoint at path.
func GraphiQL(path string) http.Handler {
	return playground.Handler("imageservice", path)
}
