// Package compat serves the REST API of the services that imageservice
// replaces, so that their clients keep working: the upload service (port
// 5000 of the old system) and the dithering service (port 5001). Both are
// backed by the same commands and read models as the GraphQL API; nothing
// here writes to storage directly.
//
// The handlers keep the old JSON shapes and field names. Unlike the old
// services they answer errors with 4xx/5xx statuses and a JSON body
// {"error": {"code", "message"}}, creations with 201 (upload) and 202
// (dither request), and they check uploads by content with the same caps
// as GraphQL uploads. How the new model maps onto the old one (ids,
// statuses, deleting a dither) is described in openapi.yaml and on the
// functions that do the mapping.
package compat

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/google/uuid"

	"github.com/imageservice/imageservice/auth"
	"github.com/imageservice/imageservice/commands"
	"github.com/imageservice/imageservice/eventstore"
	"github.com/imageservice/imageservice/images"
	"github.com/imageservice/imageservice/projections"
	"github.com/imageservice/imageservice/tracing"
)

// Commands is the part of the command service the compatibility API uses;
// *commands.Service implements it.
type Commands interface {
	// Upload checks and stores an upload.
	Upload(ctx context.Context, in commands.UploadInput) (commands.Result, error)
	// RequestDither asks for another dither of an image.
	RequestDither(ctx context.Context, in commands.DitherInput) (commands.Result, uuid.UUID, error)
	// Delete deletes an image.
	Delete(ctx context.Context, id uuid.UUID, meta eventstore.Metadata) (commands.Result, error)
	// Load returns an image's current state, replayed from its stream.
	Load(ctx context.Context, id uuid.UUID) (images.Image, error)
}

// Config is what the compatibility API needs.
type Config struct {
	// Commands runs uploads, dither requests and deletions, and loads
	// single images (so that a client reads its own writes).
	Commands Commands
	// Reads answers the list endpoints.
	Reads projections.Reader
	// BlobURL returns the public URL of a stored blob (originals and
	// results that are not synced to the cloud).
	BlobURL func(key string) string
	// WaitFor, when set, is called after every write with the position of
	// its last event, so that a list read right after a write sees it.
	WaitFor func(ctx context.Context, pos eventstore.Position) error
	// MaxUploadBytes caps an uploaded file (0: commands.DefaultMaxBytes);
	// a multipart body may be 1 MiB larger.
	MaxUploadBytes int64
	// MaxList caps the items a list endpoint returns (0: DefaultMaxList).
	MaxList int
	// Logger receives errors that are answered with 500 (default slog.Default()).
	Logger *slog.Logger
	// PrivateReads refuses reads without a key and shows each key only its
	// own images (admins all), as the GraphQL API does (PUBLIC_READ=false).
	// Writes always need the write scope. The principal is the one the
	// service's API-key middleware puts in each request's context, so the
	// handlers must be served behind it.
	PrivateReads bool
}

// DefaultMaxList is the default cap on the items of a list endpoint.
const DefaultMaxList = 1000

// API is the compatibility API: one handler per old service.
type API struct {
	cfg    Config
	upload http.Handler
	dither http.Handler
}

// New returns the compatibility API on cfg.
func New(cfg Config) *API {
	if cfg.MaxUploadBytes <= 0 {
		cfg.MaxUploadBytes = commands.DefaultMaxBytes
	}
	if cfg.MaxList <= 0 {
		cfg.MaxList = DefaultMaxList
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	a := &API{cfg: cfg}
	a.upload = a.newMux(a.uploadRoutes())
	a.dither = a.newMux(a.ditherRoutes())
	return a
}

// Mount prefixes, on the main server's mux.
const (
	UploadPrefix = "/compat/upload"
	DitherPrefix = "/compat/dither"
	OpenAPIPath  = "/compat/openapi.yaml"
)

// writeWaitTime bounds the wait for the read models after a write.
const writeWaitTime = 5 * time.Second

// Upload returns the upload service's routes, rooted at "/" as on the old
// port 5000.
func (a *API) Upload() http.Handler { return a.upload }

// Dither returns the dithering service's routes, rooted at "/" as on the
// old port 5001.
func (a *API) Dither() http.Handler { return a.dither }

// Mount adds both services to mux under UploadPrefix and DitherPrefix, and
// the OpenAPI document at OpenAPIPath.
func (a *API) Mount(mux *http.ServeMux) {
	mux.Handle(UploadPrefix+"/", http.StripPrefix(UploadPrefix, a.upload))
	mux.Handle(DitherPrefix+"/", http.StripPrefix(DitherPrefix, a.dither))
	mux.Handle("GET "+OpenAPIPath, OpenAPIHandler())
}

// waitForProjection lets the read models catch up with a write, so that a
// list read right after it sees it. A timeout is logged, not answered: the
// write itself succeeded.
func (a *API) waitForProjection(ctx context.Context, res commands.Result) {
	if a.cfg.WaitFor == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, writeWaitTime)
	defer cancel()
	if err := a.cfg.WaitFor(ctx, res.Position); err != nil {
		a.cfg.Logger.Warn("compat: read models did not catch up with a write", "err", err)
	}
}

// metadata is the event metadata of a request: a fresh correlation id
// (also sent back as X-Correlation-Id), the principal it acts as (who
// owns what it uploads) and the W3C traceparent of the request's span
// (without tracing, the one the request came with).
func metadata(w http.ResponseWriter, r *http.Request) eventstore.Metadata {
	m := eventstore.Metadata{
		CorrelationID: eventstore.NewEventID().String(),
		Actor:         auth.FromContext(r.Context()).Actor(),
		TraceParent:   tracing.TraceParent(r.Context()),
	}
	w.Header().Set("X-Correlation-Id", m.CorrelationID)
	return m
}
