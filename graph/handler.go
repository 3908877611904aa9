package graph

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/99designs/gqlgen/graphql/playground"
	coderws "github.com/coder/websocket"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"go.opentelemetry.io/otel/trace"

	"github.com/imageservice/imageservice/auth"
	"github.com/imageservice/imageservice/tracing"
)

// HandlerOptions tune the GraphQL endpoint.
type HandlerOptions struct {
	// MaxUploadBytes caps a multipart request (default 26 MiB: a 25 MiB file and its form).
	MaxUploadBytes int64
	// MaxBodyBytes caps any other request body (default 1 MiB).
	MaxBodyBytes int64
	// ComplexityLimit caps a query's complexity, in which a connection
	// counts its page size times the cost of one item (default
	// DefaultComplexityLimit).
	ComplexityLimit int
	// Keys authenticates websocket connections (connection_init's
	// "Authorization" payload); HTTP requests are authenticated by
	// auth.Keys.Middleware before they get here. Nil: open.
	Keys *auth.Keys
	// PublicRead lets requests without a key run queries and subscriptions.
	PublicRead bool
	// AllowedOrigins are the origins (host patterns, as coder/websocket
	// reads them) besides the service's own that may open websockets.
	AllowedOrigins []string
	// Production turns introspection and field suggestions off.
	Production bool
	// Observe, when set, is told of each operation's type, whether its
	// first response had errors, and how long that response took.
	Observe func(operation string, failed bool, d time.Duration)
	// AdmitMutation, when set, is asked before each mutation runs, on
	// every transport. A mutation it refuses is answered with a
	// RATE_LIMITED error (over HTTP with status 429 and Retry-After) and
	// does not run.
	AdmitMutation func(ctx context.Context) (retryAfter time.Duration, ok bool)
	// TracerProvider, when it records (tracing.Enabled), gets a span for
	// every operation; nil or a no-op provider: none.
	TracerProvider trace.TracerProvider
}

// Limits of every operation, beside the complexity limit.
const (
	maxDepth   = 12
	maxAliases = 30
	maxTokens  = 10000
)

func (o HandlerOptions) withDefaults() HandlerOptions {
	if o.MaxUploadBytes <= 0 {
		o.MaxUploadBytes = 26 << 20
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = 1 << 20
	}
	if o.ComplexityLimit <= 0 {
		o.ComplexityLimit = DefaultComplexityLimit
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
	srv := handler.New(NewExecutableSchema(Config{Resolvers: r, Complexity: complexity()}))
	srv.AddTransport(transport.Websocket{
		KeepAlivePingInterval: 15 * time.Second,
		PingPongInterval:      30 * time.Second,
		InitTimeout:           10 * time.Second,
		InitFunc:              wsInit(opts),
		Implementation: transport.CoderWebsocketImplementation{
			AcceptOptions: coderws.AcceptOptions{OriginPatterns: opts.AllowedOrigins},
		},
	})
	srv.AddTransport(transport.SSE{})
	srv.AddTransport(transport.Options{})
	srv.AddTransport(transport.GET{})
	srv.AddTransport(transport.POST{})
	srv.AddTransport(transport.MultipartForm{MaxUploadSize: opts.MaxUploadBytes, MaxMemory: 8 << 20})
	srv.SetQueryCache(boundedCache[*ast.QueryDocument]{lru.New[*ast.QueryDocument](1000),
		func(query string, _ *ast.QueryDocument) int { return len(query) }})
	srv.SetParserTokenLimit(maxTokens)
	if opts.Production {
		srv.SetDisableSuggestion(true)
	} else {
		srv.Use(extension.Introspection{})
	}
	if tracing.Enabled(opts.TracerProvider) {
		srv.AroundOperations(traceOperations(opts.TracerProvider.Tracer("github.com/imageservice/imageservice/graph")))
	}
	srv.AroundOperations(guard(opts))
	srv.AroundOperations(shareLoads)
	srv.AroundFields(markResolverErrors)
	srv.Use(extension.AutomaticPersistedQuery{Cache: boundedCache[string]{lru.New[string](1000),
		func(_, query string) int { return len(query) }}})
	srv.Use(extension.FixedComplexityLimit(opts.ComplexityLimit))
	srv.SetErrorPresenter(presentError(r.Logger))
	srv.SetRecoverFunc(recoverPanic(r.Logger))
	return requirePreflight(withRequestMetadata(withRateStatus(limitBody(srv, opts))))
}

// guard refuses operations the principal may not run (writes without the
// write scope; reads without a key when reads are not public) and
// operations that are too deep or use too many aliases.
func guard(opts HandlerOptions) graphql.OperationMiddleware {
	return func(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
		op := graphql.GetOperationContext(ctx)
		p := auth.FromContext(ctx)
		need := auth.ScopeRead
		if op.Operation != nil && op.Operation.Operation == ast.Mutation {
			need = auth.ScopeWrite
		}
		if !p.Permits(need, opts.PublicRead) {
			return refuse(ctx, "UNAUTHENTICATED", "this operation needs an API key with the "+need+" scope")
		}
		if need == auth.ScopeWrite && opts.AdmitMutation != nil {
			if wait, ok := opts.AdmitMutation(ctx); !ok {
				return rateLimited(ctx, wait)
			}
		}
		if op.Operation != nil {
			if d := depth(op.Operation.SelectionSet); d > maxDepth {
				return refuse(ctx, "QUERY_TOO_DEEP", fmt.Sprintf("the query is %d levels deep; at most %d are allowed", d, maxDepth))
			}
			if n := aliases(op.Operation.SelectionSet); n > maxAliases {
				return refuse(ctx, "TOO_MANY_ALIASES", fmt.Sprintf("the query uses %d aliases; at most %d are allowed", n, maxAliases))
			}
		}
		if op.Operation != nil && op.Operation.Operation == ast.Subscription {
			return observe(ctx, opts, endTooSlow(ctx, next))
		}
		return observe(ctx, opts, next(ctx))
	}
}

// observe reports the operation's first response to opts.Observe.
func observe(ctx context.Context, opts HandlerOptions, h graphql.ResponseHandler) graphql.ResponseHandler {
	if opts.Observe == nil {
		return h
	}
	op := graphql.GetOperationContext(ctx)
	kind := "unknown"
	if op.Operation != nil {
		kind = string(op.Operation.Operation)
	}
	start, first := time.Now(), true
	return func(ctx context.Context) *graphql.Response {
		resp := h(ctx)
		if first && resp != nil {
			first = false
			opts.Observe(kind, len(resp.Errors) > 0, time.Since(start))
		}
		return resp
	}
}

func refuse(ctx context.Context, code, msg string) graphql.ResponseHandler {
	return graphql.OneShot(&graphql.Response{Errors: gqlerror.List{{Message: msg, Extensions: map[string]any{"code": code}}}})
}

// depth is the nesting depth of a selection set (fragments included).
func depth(set ast.SelectionSet) int {
	deepest := 0
	for _, sel := range set {
		var d int
		switch s := sel.(type) {
		case *ast.Field:
			d = 1 + depth(s.SelectionSet)
		case *ast.InlineFragment:
			d = depth(s.SelectionSet)
		case *ast.FragmentSpread:
			if s.Definition != nil {
				d = depth(s.Definition.SelectionSet)
			}
		}
		deepest = max(deepest, d)
	}
	return deepest
}

// aliases counts the aliased fields of a selection set.
func aliases(set ast.SelectionSet) int {
	n := 0
	for _, sel := range set {
		switch s := sel.(type) {
		case *ast.Field:
			if s.Alias != "" && s.Alias != s.Name {
				n++
			}
			n += aliases(s.SelectionSet)
		case *ast.InlineFragment:
			n += aliases(s.SelectionSet)
		case *ast.FragmentSpread:
			if s.Definition != nil {
				n += aliases(s.Definition.SelectionSet)
			}
		}
	}
	return n
}

// wsInit authenticates a websocket by its connection_init payload and
// refuses a bad key, or a missing one when reads are not public, with
// close code 4403.
func wsInit(opts HandlerOptions) transport.WebsocketInitFunc {
	return func(ctx context.Context, payload transport.InitPayload) (context.Context, *transport.InitPayload, error) {
		ctx = withSlots(ctx)
		if opts.Keys == nil {
			return ctx, nil, nil
		}
		header, _ := payload["Authorization"].(string)
		if header == "" {
			header, _ = payload["authorization"].(string)
		}
		p, err := opts.Keys.PrincipalOf(ctx, header)
		if err == nil && !p.Permits(auth.ScopeRead, opts.PublicRead) {
			err = errors.New("an API key is required")
		}
		if err != nil {
			return transport.WithWebsocketCloseCode(ctx, 4403), nil, errors.New("forbidden: invalid, revoked or missing API key")
		}
		return auth.WithPrincipal(ctx, p), nil, nil
	}
}

// requirePreflight refuses, as Apollo's CSRF prevention does, requests
// that a browser could send cross-site without a preflight (multipart,
// form and text posts, and GETs) unless they carry a header that forces
// one. JSON posts and websockets are not affected.
func requirePreflight(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if simpleRequest(r) && r.Header.Get("Apollo-Require-Preflight") == "" &&
			r.Header.Get("GraphQL-Require-Preflight") == "" && r.Header.Get("X-Apollo-Operation-Name") == "" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"errors":[{"message":"this request needs a GraphQL-Require-Preflight header (CSRF protection)","extensions":{"code":"CSRF_PREFLIGHT_REQUIRED"}}]}`))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// simpleRequest reports a POST a browser sends cross-site without a
// preflight: multipart, urlencoded or plain text bodies.
func simpleRequest(r *http.Request) bool {
	if r.Method != http.MethodPost {
		return false
	}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return mt == "multipart/form-data" || mt == "application/x-www-form-urlencoded" || mt == "text/plain" || mt == ""
}

// limitBody caps request bodies: multipart uploads at MaxUploadBytes,
// everything else at MaxBodyBytes. A body over its cap is answered 413
// FILE_TOO_LARGE: before it is read when its length is declared, and once
// it runs past the cap when it is not (Transfer-Encoding: chunked), in
// place of the error gqlgen's transport answers then (a 422 or 400, or a
// 200 with a GraphQL error, none with a code).
func limitBody(next http.Handler, opts HandlerOptions) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		limit := opts.MaxBodyBytes
		if ct := r.Header.Get("Content-Type"); len(ct) >= 19 && ct[:19] == "multipart/form-data" {
			limit = opts.MaxUploadBytes
		}
		if r.ContentLength > limit {
			writeTooLarge(w, limit)
			return
		}
		if r.Body == nil {
			next.ServeHTTP(w, r)
			return
		}
		body := &cappedBody{ReadCloser: http.MaxBytesReader(w, r.Body, limit)}
		r.Body = body
		if r.ContentLength >= 0 { // a declared length within the cap cannot run past it
			next.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(&tooLargeWriter{ResponseWriter: w, body: body, limit: limit}, r)
	})
}

// writeTooLarge answers 413 FILE_TOO_LARGE for a body over limit bytes.
func writeTooLarge(w http.ResponseWriter, limit int64) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusRequestEntityTooLarge)
	_, _ = fmt.Fprintf(w, `{"errors":[{"message":"the request body is larger than %d bytes","extensions":{"code":"FILE_TOO_LARGE"}}]}`, limit)
}

// cappedBody is a request body read through http.MaxBytesReader that
// notes when a read ran past the cap.
type cappedBody struct {
	io.ReadCloser
	overCap atomic.Bool
}

func (b *cappedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	var tooLarge *http.MaxBytesError
	if err != nil && errors.As(err, &tooLarge) {
		b.overCap.Store(true)
	}
	return n, err
}

// tooLargeWriter answers 413 FILE_TOO_LARGE instead of the handler's
// response when the body ran past its cap before that response began; the
// handler's response is then dropped.
type tooLargeWriter struct {
	http.ResponseWriter
	body    *cappedBody
	limit   int64
	started bool // the handler's response has begun
	refused bool // the 413 was written
}

// refuse writes the 413 if the body ran past its cap and the handler's
// response has not begun, and reports whether the 413 is the response.
func (w *tooLargeWriter) refuse() bool {
	if !w.started && !w.refused && w.body.overCap.Load() {
		w.refused = true
		writeTooLarge(w.ResponseWriter, w.limit)
	}
	return w.refused
}

func (w *tooLargeWriter) WriteHeader(status int) {
	if w.refuse() {
		return
	}
	w.started = true
	w.ResponseWriter.WriteHeader(status)
}

func (w *tooLargeWriter) Write(b []byte) (int, error) {
	if w.refuse() {
		return len(b), nil
	}
	w.started = true
	return w.ResponseWriter.Write(b)
}

// Flush flushes the handler's response (SSE needs an http.Flusher).
func (w *tooLargeWriter) Flush() {
	if w.refuse() {
		return
	}
	w.started = true
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *tooLargeWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// GraphiQL returns the GraphiQL page for the endpoint at path.
func GraphiQL(path string) http.Handler {
	return playground.Handler("imageservice", path)
}

// maxCachedQuery is the longest query text, in bytes, that the query
// caches keep. Longer ones are parsed (or sent again) each time: their
// 1000 entries must not pin gigabytes of text a client chose.
const maxCachedQuery = 16 << 10

// boundedCache is a cache that leaves out entries whose query text (size
// tells it) is longer than maxCachedQuery.
type boundedCache[T any] struct {
	graphql.Cache[T]
	size func(key string, value T) int
}

// Add adds the entry unless it is too large.
func (c boundedCache[T]) Add(ctx context.Context, key string, value T) {
	if c.size(key, value) <= maxCachedQuery {
		c.Cache.Add(ctx, key, value)
	}
}
