// Package server assembles the service: the stores, the command service,
// the read models and their projector, the live hub and the HTTP routes.
package server

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/imageservice/imageservice/blobstore"
	blobpg "github.com/imageservice/imageservice/blobstore/postgres"
	"github.com/imageservice/imageservice/bridge"
	"github.com/imageservice/imageservice/commands"
	"github.com/imageservice/imageservice/eventstore"
	espg "github.com/imageservice/imageservice/eventstore/postgres"
	"github.com/imageservice/imageservice/graph"
	"github.com/imageservice/imageservice/imagefile"
	"github.com/imageservice/imageservice/live"
	"github.com/imageservice/imageservice/processors"
	projpg "github.com/imageservice/imageservice/projections/postgres"
	"github.com/imageservice/imageservice/thumbs"
	"github.com/imageservice/imageservice/web"
)

// Config is what the server needs to know.
type Config struct {
	// PublicURL is the base URL clients reach the service at, without a
	// trailing slash; links to blobs start with it.
	PublicURL string
	// AutoDither requests one default dither with every upload that asks for none.
	AutoDither bool
	// MaxUploadBytes and MaxPixels cap uploads (0: the defaults of package commands).
	MaxUploadBytes, MaxPixels int64
	// Processors tunes the dither processor; its Limits default to the
	// upload caps.
	Processors processors.Config
	// NoProcessors leaves the processors to other replicas (an API-only
	// replica); jobs are still enqueued by whichever replica runs them.
	NoProcessors bool
	// Logger receives the server's logs (default slog.Default()).
	Logger *slog.Logger
	// Sinks are the brokers the bridge republishes the log to, each under
	// its own subscription ("bridge-<name>"); none turns the bridge off.
	Sinks []bridge.Sink
	// BridgeTopics name the bridge's topics (empty names: the defaults).
	BridgeTopics bridge.Topics
}

// migrations of every component, in order.
var migrations = []struct {
	migrate func(context.Context, *pgxpool.Pool) error
	pending func(context.Context, *pgxpool.Pool) (bool, error)
}{
	{espg.Migrate, espg.Pending},
	{blobpg.Migrate, blobpg.Pending},
	{projpg.Migrate, projpg.Pending},
	{processors.Migrate, processors.Pending},
}

// Migrate applies every component's migrations to the pool's schema.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	for _, m := range migrations {
		if err := m.migrate(ctx, pool); err != nil {
			return err
		}
	}
	return nil
}

// migrated reports whether every component's migrations are applied.
func migrated(ctx context.Context, pool *pgxpool.Pool) bool {
	for _, m := range migrations {
		if pending, err := m.pending(ctx, pool); err != nil || pending {
			return false
		}
	}
	return true
}

// Server is the assembled service on a migrated PostgreSQL database.
type Server struct {
	pool     *pgxpool.Pool
	store    *espg.Store
	reads    *projpg.ReadModel
	hub      *live.Hub
	commands *commands.Service
	procs    *processors.Processors
	handler  http.Handler
	log      *slog.Logger
	bridges  []*bridge.Bridge
}

// New assembles the service on the pool, whose database must be migrated.
// Run starts its background work; Close releases it.
func New(pool *pgxpool.Pool, cfg Config) (*Server, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	store := espg.Open(pool, espg.Options{Logger: log})
	blobs := blobpg.New(pool, blobpg.WithMaxSize(max(cfg.MaxUploadBytes, 64<<20)))
	s := &Server{pool: pool, store: store, reads: projpg.New(store, projpg.WithLogger(log)),
		hub: live.NewHub(store, 0), log: log}
	s.commands = commands.New(commands.Postgres{Store: store, Blobs: blobs}, commands.Options{
		MaxBytes: cfg.MaxUploadBytes, MaxPixels: cfg.MaxPixels, AutoDither: cfg.AutoDither,
	})
	pc := cfg.Processors
	pc.Logger = log
	if pc.Limits == (imagefile.Limits{}) {
		pc.Limits = imagefile.Limits{MaxBytes: cfg.MaxUploadBytes, MaxPixels: cfg.MaxPixels}
	}
	if !cfg.NoProcessors {
		procs, err := processors.New(store, s.commands, blobs, pc)
		if err != nil {
			store.Close()
			return nil, err
		}
		s.procs = procs
	}
	resolver := &graph.Resolver{
		Commands: s.commands, Reads: s.reads, Live: s.hub, Logger: log,
		BlobURL: func(key string) string { return cfg.PublicURL + "/blobs/" + key },
	}
	maxUpload := cfg.MaxUploadBytes
	if maxUpload <= 0 {
		maxUpload = commands.DefaultMaxBytes
	}
	mux := http.NewServeMux()
	mux.Handle("/query", graph.NewHandler(resolver, graph.HandlerOptions{MaxUploadBytes: maxUpload + 1<<20}))
	mux.Handle("GET /graphiql", graph.GraphiQL("/query"))
	mux.Handle("/blobs/", http.StripPrefix("/blobs/", blobstore.Handler(blobs)))
	mux.Handle("/thumbs/", http.StripPrefix("/thumbs/", thumbs.New(blobs, thumbs.Options{Limits: pc.Limits, Logger: log})))
	mux.Handle("/", web.Handler())
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /readyz", s.readyz)
	s.handler = mux
	mapper := bridge.Mapper{PublicURL: cfg.PublicURL, Topics: cfg.BridgeTopics}
	for _, sink := range cfg.Sinks {
		s.bridges = append(s.bridges, &bridge.Bridge{Store: store, Sink: sink, Mapper: mapper, Logger: log})
	}
	return s, nil
}

// BridgeLag reports how far each bridge is behind the log, by subscription name.
func (s *Server) BridgeLag(ctx context.Context) (map[string]eventstore.Lag, error) {
	lags := make(map[string]eventstore.Lag, len(s.bridges))
	for _, b := range s.bridges {
		lag, err := b.Lag(ctx)
		if err != nil {
			return nil, err
		}
		lags[b.Name()] = lag
	}
	return lags, nil
}

// Handler returns the HTTP routes.
func (s *Server) Handler() http.Handler { return s.handler }

// Store returns the event store.
func (s *Server) Store() *espg.Store { return s.store }

// Commands returns the command service.
func (s *Server) Commands() *commands.Service { return s.commands }

// ReadModel returns the read models.
func (s *Server) ReadModel() *projpg.ReadModel { return s.reads }

// Hub returns the live hub that feeds subscriptions.
func (s *Server) Hub() *live.Hub { return s.hub }

// Close stops the event store's listener.
func (s *Server) Close() { s.store.Close() }

// Run runs the projector, the processors, the live hub and the bridges
// until ctx ends, restarting each after a failure.
func (s *Server) Run(ctx context.Context) {
	var wg sync.WaitGroup
	runner := &eventstore.Runner{Store: s.store, Logger: s.log}
	wg.Go(func() {
		s.keepRunning(ctx, "projector", func(ctx context.Context) error { return s.reads.Run(ctx, runner) })
	})
	if s.procs != nil {
		wg.Go(func() {
			s.keepRunning(ctx, "processors", func(ctx context.Context) error { return s.procs.Run(ctx, runner) })
		})
	}
	wg.Go(func() { s.keepRunning(ctx, "live hub", s.hub.Run) })
	for _, b := range s.bridges {
		wg.Go(func() {
			s.keepRunning(ctx, b.Name(), func(ctx context.Context) error { return b.Run(ctx, runner) })
		})
	}
	wg.Wait()
}

// keepRunning runs fn until ctx ends, restarting it after a failure.
func (s *Server) keepRunning(ctx context.Context, name string, fn func(context.Context) error) {
	for ctx.Err() == nil {
		err := fn(ctx)
		if ctx.Err() != nil {
			return
		}
		s.log.Error(fmt.Sprintf("%s stopped; restarting", name), "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyz answers 200 when the database answers and is migrated.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	if err := s.pool.Ping(ctx); err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "reason": "database unreachable"})
		return
	}
	if !migrated(ctx, s.pool) {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "reason": "database not migrated"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// writeJSON writes v as a JSON response with the given status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
