// Package server assembles the service: the stores, the command service,
// the read models and their projector, the live hub and the HTTP routes.
package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel/trace"

	"github.com/imageservice/imageservice/auth"
	"github.com/imageservice/imageservice/blobgc"
	"github.com/imageservice/imageservice/blobstore"
	blobpg "github.com/imageservice/imageservice/blobstore/postgres"
	"github.com/imageservice/imageservice/bridge"
	"github.com/imageservice/imageservice/commands"
	"github.com/imageservice/imageservice/compat"
	"github.com/imageservice/imageservice/eventstore"
	espg "github.com/imageservice/imageservice/eventstore/postgres"
	"github.com/imageservice/imageservice/graph"
	"github.com/imageservice/imageservice/imagefile"
	"github.com/imageservice/imageservice/live"
	"github.com/imageservice/imageservice/metrics"
	"github.com/imageservice/imageservice/processors"
	"github.com/imageservice/imageservice/projections"
	projpg "github.com/imageservice/imageservice/projections/postgres"
	"github.com/imageservice/imageservice/readcache"
	"github.com/imageservice/imageservice/thumbs"
	"github.com/imageservice/imageservice/tracing"
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
	// PrivateReads shows each API key only its own images (PUBLIC_READ=false);
	// by default anyone may read, and only writes need a key.
	PrivateReads bool
	// AllowedOrigins may open websockets besides the service's own origin.
	AllowedOrigins []string
	// Production turns GraphQL introspection and field suggestions off.
	Production bool
	// WriteRate and WriteBurst bound each client's writes: uploads, GraphQL
	// mutations on every transport, and REST writes
	// (per API key, or per address without one); 0 turns limiting off.
	WriteRate  float64
	WriteBurst int
	// LiveConnectionsPerClient bounds the websockets and event streams
	// each client (API key, or address without one) holds open at once on
	// this replica; beyond it an upgrade is answered 429
	// TOO_MANY_CONNECTIONS. 0 means DefaultLiveConnectionsPerClient; a
	// negative value turns the limit off.
	LiveConnectionsPerClient int
	// TrustedProxies are the reverse proxies whose X-Forwarded-For names
	// the client, for the per-client limits above.
	TrustedProxies TrustedProxies
	// ReadCacheTTL bounds how long the in-memory cache of image(id)
	// answers serves one (default readcache.DefaultTTL).
	ReadCacheTTL time.Duration
	// SubscriptionBuffer is how many events each GraphQL subscription may
	// have waiting (default live.DefaultBuffer); a subscriber further
	// behind is closed with a SUBSCRIBER_TOO_SLOW error.
	SubscriptionBuffer int
	// Logger receives the server's logs (default slog.Default()).
	Logger *slog.Logger
	// Sinks are the brokers the bridge republishes the log to, each under
	// its own subscription ("bridge-<name>"); none turns the bridge off.
	Sinks []bridge.Sink
	// BridgeTopics name the bridge's topics (empty names: the defaults).
	BridgeTopics bridge.Topics
	// TracerProvider gets the spans of requests, GraphQL operations, jobs
	// and broker publishes (nil: none; the trace context a request came
	// with still reaches event metadata and broker messages).
	TracerProvider trace.TracerProvider
	// BlobRetention is how long a blob that no live image uses is kept
	// after its last Put before the blob sweeper purges it (package
	// blobgc; at least blobgc.MinRetention); 0 keeps every blob.
	BlobRetention time.Duration
	// BlobSweepInterval is how often the sweeper runs (default
	// blobgc.DefaultInterval).
	BlobSweepInterval time.Duration
	// BlobSweepClock, for tests, replaces the blob store's clock in the
	// sweeper, to sweep "as if later" (see blobgc.Options.Now).
	BlobSweepClock func(ctx context.Context) (time.Time, error)
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

// ReadModel is a backend's read models and their projector.
type ReadModel interface {
	projections.Reader
	// Run runs the projector until ctx ends.
	Run(ctx context.Context, runner *eventstore.Runner) error
	// WaitFor waits until the model has folded in the event at pos.
	WaitFor(ctx context.Context, pos eventstore.Position) error
}

// Processor is a backend's job processing.
type Processor interface {
	Run(ctx context.Context, runner *eventstore.Runner) error
	Stats(ctx context.Context) (processors.Stats, error)
}

// storage is one backend's parts of the service.
type storage struct {
	// noNotifications is set when the backend's processors cannot send
	// notifications, so requests for them are refused.
	noNotifications bool
	store           eventstore.Store
	blobs           blobstore.Store
	reads           ReadModel
	cmds            commands.Backend
	// procs builds the processors on the command service.
	procs func(*commands.Service, processors.Config) (Processor, error)
	// ready reports whether the storage can serve (reachable, migrated).
	ready func(ctx context.Context) error
	// oldestTx, when set, reports the age in seconds of the oldest open
	// writing transaction, which holds back every reader of the log.
	oldestTx func(ctx context.Context) (float64, error)
	// readModel is the checkpoint of the reads' projector, and
	// subscriptions the other background readers; the lag of each is
	// published.
	readModel     eventstore.CheckpointKey
	subscriptions []eventstore.CheckpointKey
	close         func()
	// metrics is the registry the store reports its appends to.
	metrics *metrics.Registry
}

// Server is the assembled service.
type Server struct {
	st       storage
	keys     *auth.Keys
	hub      *live.Hub
	commands *commands.Service
	procs    Processor
	handler  http.Handler
	log      *slog.Logger
	bridges  []*bridge.Bridge
	metrics  *metrics.Registry
	compat   *compat.API
	// cache answers image(id) with its dithers from memory, where the
	// read model can tell its checkpoint (nil otherwise).
	cache *readcache.Cache
	// live are the blobs recently found in use (see withdrawn).
	live liveBlobs
	// limiter bounds each client's writes, on every address.
	limiter *rateLimiter
	// sweeper purges unused blobs (nil: BlobRetention is 0).
	sweeper *blobgc.Sweeper
}

// New assembles the service on a PostgreSQL pool, whose database must be
// migrated (Migrate). Run starts its background work; Close releases it.
func New(pool *pgxpool.Pool, cfg Config) (*Server, error) {
	log := logger(cfg)
	m := metrics.New(log)
	store := espg.Open(pool, espg.Options{Logger: log, ObserveAppend: m.ObserveAppend})
	blobs := blobpg.New(pool, blobpg.WithMaxSize(max(cfg.MaxUploadBytes, 64<<20)))
	return assemble(storage{
		metrics: m,
		store:   store, blobs: blobs, reads: projpg.New(store, projpg.WithLogger(log)),
		cmds: commands.Postgres{Store: store, Blobs: blobs},
		procs: func(cmds *commands.Service, pc processors.Config) (Processor, error) {
			return processors.New(store, cmds, blobs, pc)
		},
		ready: func(ctx context.Context) error {
			if err := pool.Ping(ctx); err != nil {
				return errUnreachable
			}
			if !migrated(ctx, pool) {
				return errNotMigrated
			}
			return nil
		},
		oldestTx: func(ctx context.Context) (float64, error) {
			var age float64
			err := pool.QueryRow(ctx, `SELECT coalesce(extract(epoch FROM max(now() - xact_start)), 0)::float8
				FROM pg_stat_activity WHERE backend_xid IS NOT NULL`).Scan(&age)
			return age, err
		},
		readModel:     eventstore.CheckpointKey{Subscription: projpg.DefaultName},
		subscriptions: []eventstore.CheckpointKey{{Subscription: processors.EnqueuerName}},
		close:         store.Close,
	}, cfg)
}

func logger(cfg Config) *slog.Logger {
	if cfg.Logger == nil {
		return slog.Default()
	}
	return cfg.Logger
}

// assemble builds the service on a backend's storage.
func assemble(st storage, cfg Config) (*Server, error) {
	log := logger(cfg)
	s := &Server{st: st, keys: auth.NewKeys(st.store), hub: live.NewHub(st.store, cfg.SubscriptionBuffer), log: log}
	var err error
	if src, ok := st.reads.(readcache.Source); ok {
		s.cache = readcache.New(src, s.hub, st.store, readcache.Options{Logger: log, TTL: cfg.ReadCacheTTL})
	}
	s.commands = commands.New(st.cmds, commands.Options{
		MaxBytes: cfg.MaxUploadBytes, MaxPixels: cfg.MaxPixels, AutoDither: cfg.AutoDither,
		NoNotifications: st.noNotifications,
	})
	if !cfg.NoProcessors {
		pc := cfg.Processors
		pc.Logger = log
		if pc.TracerProvider == nil {
			pc.TracerProvider = cfg.TracerProvider
		}
		if pc.PublicURL == "" {
			pc.PublicURL = cfg.PublicURL
		}
		if pc.Limits == (imagefile.Limits{}) {
			pc.Limits = imagefile.Limits{MaxBytes: cfg.MaxUploadBytes, MaxPixels: cfg.MaxPixels}
		}
		if s.procs, err = st.procs(s.commands, pc); err != nil {
			st.close()
			return nil, err
		}
	}
	s.metrics = st.metrics
	if s.sweeper, err = newSweeper(st, cfg, log); err != nil {
		st.close()
		return nil, err
	}
	src := metrics.Source{Lags: s.lags, Jobs: s.jobs, OldestWriteTx: st.oldestTx}
	if s.cache != nil {
		src.ReadCache = s.cache.Stats
	}
	s.metrics.Publish(src)
	s.handler = s.routes(cfg)
	mapper := bridge.Mapper{PublicURL: cfg.PublicURL, Topics: cfg.BridgeTopics}
	for _, sink := range cfg.Sinks {
		s.bridges = append(s.bridges, &bridge.Bridge{Store: st.store, Sink: bridge.Traced(sink, cfg.TracerProvider), Mapper: mapper,
			Logger: log, ObservePublish: s.metrics.ObservePublish})
	}
	return s, nil
}

// newSweeper returns the blob sweeper, or nil when cfg.BlobRetention is 0.
func newSweeper(st storage, cfg Config, log *slog.Logger) (*blobgc.Sweeper, error) {
	if cfg.BlobRetention == 0 {
		return nil, nil
	}
	purger, ok := st.blobs.(blobstore.Purger)
	users, ok2 := st.reads.(projections.BlobUser)
	if !ok || !ok2 {
		return nil, errors.New("blob retention: this backend cannot purge blobs")
	}
	return blobgc.New(blobgc.Options{
		Store: st.store, Blobs: purger, Users: users, WaitFor: st.reads.WaitFor,
		Retention: cfg.BlobRetention, Interval: cfg.BlobSweepInterval, Now: cfg.BlobSweepClock,
		Logger: log, Observe: st.metrics.ObserveSweep,
	})
}

// routes returns the HTTP routes.
func (s *Server) routes(cfg Config) http.Handler {
	resolver := &graph.Resolver{
		Commands: s.commands, Reads: s.Reads(), Live: s.hub, Logger: s.log, PrivateReads: cfg.PrivateReads,
		BlobURL: func(key string) string { return cfg.PublicURL + "/blobs/" + key },
	}
	maxUpload := cfg.MaxUploadBytes
	if maxUpload <= 0 {
		maxUpload = commands.DefaultMaxBytes
	}
	s.limiter = newRateLimiter(cfg.WriteRate, cfg.WriteBurst, cfg.TrustedProxies)
	live := newLiveLimiter(cfg.LiveConnectionsPerClient, cfg.TrustedProxies)
	mux := http.NewServeMux()
	mux.Handle("/query", live.middleware(graph.NewHandler(resolver, graph.HandlerOptions{
		MaxUploadBytes: maxUpload + 1<<20, Keys: s.keys, PublicRead: !cfg.PrivateReads,
		AllowedOrigins: cfg.AllowedOrigins, Production: cfg.Production, Observe: s.metrics.ObserveOperation,
		AdmitMutation:  s.limiter.admitMutation,
		TracerProvider: cfg.TracerProvider,
	})))
	mux.Handle("GET /graphiql", graph.GraphiQL("/query"))
	mux.Handle("/blobs/", http.StripPrefix("/blobs/", blobstore.Handler(s.st.blobs, blobstore.HandlerOptions{Withdrawn: s.withdrawn})))
	limits := imagefile.Limits{MaxBytes: cfg.MaxUploadBytes, MaxPixels: cfg.MaxPixels}
	mux.Handle("/thumbs/", http.StripPrefix("/thumbs/", thumbs.New(s.st.blobs,
		thumbs.Options{Limits: limits, Logger: s.log, Withdrawn: s.withdrawn})))
	mux.Handle("/", web.Handler())
	s.compat = compat.New(compat.Config{Commands: s.commands, Reads: s.st.reads, WaitFor: s.st.reads.WaitFor, Logger: s.log,
		MaxUploadBytes: maxUpload, BlobURL: func(key string) string { return cfg.PublicURL + "/blobs/" + key },
		PrivateReads: cfg.PrivateReads})
	s.compat.Mount(mux)
	// Health and metrics answer without a key, and without reading the
	// keys: they must answer while the database is down or not migrated.
	outer := http.NewServeMux()
	outer.HandleFunc("GET /healthz", s.healthz)
	outer.HandleFunc("GET /readyz", s.readyz)
	outer.Handle("GET /metrics", s.metrics.Handler())
	outer.Handle("/", s.guard(mux, isWrite))
	return tracing.Middleware(cfg.TracerProvider, s.metrics.Middleware("all", securityHeaders(outer)))
}

// guard puts every request to h behind the rate limit of writes (writes
// tells them) and the API keys, which set the request's principal.
func (s *Server) guard(h http.Handler, writes func(*http.Request) bool) http.Handler {
	return s.limiter.middleware(s.keys.Middleware(s.log)(h), writes)
}

// CompatHandlers returns the old services' REST APIs rooted at "/", for
// addresses of their own (UPLOAD_COMPAT_ADDR, DITHER_COMPAT_ADDR): behind
// the same API keys, write rate limits, security headers and metrics as
// the main address's /compat/ routes.
func (s *Server) CompatHandlers() (upload, dither http.Handler) {
	wrap := func(h http.Handler) http.Handler {
		return s.metrics.Middleware("all", securityHeaders(s.guard(h, isRESTWrite)))
	}
	return wrap(s.compat.Upload()), wrap(s.compat.Dither())
}

// withdrawn reports whether every image that used a blob is deleted, so
// that its bytes (and thumbnails) are no longer served. While the read
// model is behind the log it cannot tell (an upload of the same bytes may
// not be folded in yet), and the blob is served; an upload that the log's
// horizon still hides (another transaction is open) is not seen, and its
// blob is refused until readers see it. A blob found in use is
// not asked about again for liveBlobTTL: a deletion takes effect within
// that time of its projection.
func (s *Server) withdrawn(ctx context.Context, key string) (bool, error) {
	users, ok := s.st.reads.(projections.BlobUser)
	if !ok || s.live.has(key) {
		return false, nil
	}
	use, err := users.BlobUse(ctx, key)
	if err != nil {
		return false, err
	}
	if !use.Withdrawn() {
		s.live.add(key)
		return false, nil
	}
	lag, err := eventstore.SubscriptionLag(ctx, s.st.store, s.st.readModel)
	if err != nil {
		return false, fmt.Errorf("lag of the read model: %w", err)
	}
	return lag.Events == 0, nil
}

// liveBlobTTL is how long a blob found in use is served without asking
// the read model again, and maxLiveBlobs how many such answers are kept.
const (
	liveBlobTTL  = 5 * time.Second
	maxLiveBlobs = 10_000
)

// liveBlobs remembers the blobs found in use, each for liveBlobTTL.
type liveBlobs struct {
	mu    sync.Mutex
	until map[string]time.Time
}

func (l *liveBlobs) has(key string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return time.Now().Before(l.until[key])
}

func (l *liveBlobs) add(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.until == nil || len(l.until) >= maxLiveBlobs {
		l.until = make(map[string]time.Time) // forgetting only costs queries
	}
	l.until[key] = time.Now().Add(liveBlobTTL)
}

// lags reads the lag of every background subscription.
func (s *Server) lags(ctx context.Context) (map[string][2]float64, error) {
	keys := append([]eventstore.CheckpointKey{s.st.readModel}, s.st.subscriptions...)
	for _, b := range s.bridges {
		keys = append(keys, eventstore.CheckpointKey{Subscription: b.Name()})
	}
	out := make(map[string][2]float64, len(keys))
	for _, k := range keys {
		lag, err := eventstore.SubscriptionLag(ctx, s.st.store, k)
		if err != nil {
			return out, err
		}
		out[k.String()] = [2]float64{float64(lag.Events), lag.Age.Seconds()}
	}
	return out, nil
}

// jobs reads the job queue's numbers.
func (s *Server) jobs(ctx context.Context) (map[string]float64, float64, float64, error) {
	if s.procs == nil {
		return nil, 0, 0, nil
	}
	st, err := s.procs.Stats(ctx)
	if err != nil {
		return nil, 0, 0, err
	}
	return map[string]float64{
		"queued": float64(st.Queued), "running": float64(st.Running), "retrying": float64(st.Retrying),
		"failed": float64(st.Failed), "completed": float64(st.Completed),
	}, st.DitherP50.Seconds(), st.DitherP95.Seconds(), nil
}

// Keys returns the API keys.
func (s *Server) Keys() *auth.Keys { return s.keys }

// securityHeaders sets the headers every response carries.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		if h.Get("Content-Security-Policy") == "" && r.URL.Path == "/graphiql" {
			// GraphiQL loads its scripts from a CDN; nothing may frame it.
			h.Set("Content-Security-Policy", "frame-ancestors 'none'")
		}
		next.ServeHTTP(w, r)
	})
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
func (s *Server) Store() eventstore.Store { return s.st.store }

// ReadModel returns the read models.
func (s *Server) ReadModel() ReadModel { return s.st.reads }

// ReadCache returns the cache of image(id) answers, or nil when there is
// none (a read model that cannot tell its checkpoint, as on SQLite).
func (s *Server) ReadCache() *readcache.Cache { return s.cache }

// Reads returns the read models as the API reads them: through the cache
// when there is one.
func (s *Server) Reads() projections.Reader {
	if s.cache == nil {
		return s.st.reads
	}
	return cachedReads{Reader: s.st.reads, cache: s.cache}
}

// cachedReads is a read model whose image(id) with its first dithers
// comes through the cache.
type cachedReads struct {
	projections.Reader
	cache *readcache.Cache
}

// ImageWithDithers answers from the cache (see graph's imageQuery).
func (r cachedReads) ImageWithDithers(ctx context.Context, id uuid.UUID, first int) (projections.Image, projections.Page[projections.Dither], error) {
	return r.cache.ImageWithDithers(ctx, id, first)
}

// BlobSweeper returns the sweeper of unused blobs, or nil when blobs are
// kept (Config.BlobRetention is 0).
func (s *Server) BlobSweeper() *blobgc.Sweeper { return s.sweeper }

// Commands returns the command service.
func (s *Server) Commands() *commands.Service { return s.commands }

// Processors returns the job processors, or nil on an API-only replica.
func (s *Server) Processors() Processor { return s.procs }

// Hub returns the live hub that feeds subscriptions.
func (s *Server) Hub() *live.Hub { return s.hub }

// Close releases the storage (the event store's listener, open files).
func (s *Server) Close() { s.st.close() }

// Run runs the projector, the processors, the live hub and the bridges
// until ctx ends, restarting each after a failure.
func (s *Server) Run(ctx context.Context) {
	var wg sync.WaitGroup
	runner := &eventstore.Runner{Store: s.st.store, Logger: s.log}
	wg.Go(func() {
		s.keepRunning(ctx, "projector", func(ctx context.Context) error { return s.st.reads.Run(ctx, runner) })
	})
	if s.procs != nil {
		wg.Go(func() {
			s.keepRunning(ctx, "processors", func(ctx context.Context) error { return s.procs.Run(ctx, runner) })
		})
	}
	wg.Go(func() { s.keepRunning(ctx, "live hub", s.hub.Run) })
	if s.sweeper != nil {
		wg.Go(func() { s.keepRunning(ctx, "blob sweeper", s.sweeper.Run) })
	}
	if s.cache != nil {
		wg.Go(func() { s.keepRunning(ctx, "read cache", s.cache.Run) })
	}
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

// Why the storage is not ready (storage.ready's errors).
var (
	errUnreachable = errors.New("database unreachable")
	errNotMigrated = errors.New("database not migrated")
)

// States of the components in /readyz's checks.
const (
	stateUp      = "up"
	stateDown    = "down"
	statePending = "pending"
	stateUnknown = "unknown"
)

// readyz answers 200 when the storage answers and is migrated, else 503.
// Its body reports each component: "database", "migrations" and each
// bridge's broker by sink name ("nats", "kafka"), as up or down. A broker
// that is down leaves the service ready: the API works without it, and
// the bridge catches up from its checkpoint once the broker is back.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	checks := map[string]string{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, b := range s.bridges {
		p, ok := bridge.PingerOf(b.Sink)
		if !ok {
			continue
		}
		wg.Go(func() {
			state := stateUp
			if err := p.Ping(ctx); err != nil {
				state = stateDown
			}
			mu.Lock()
			checks[b.Sink.Name()] = state
			mu.Unlock()
		})
	}
	err := s.st.ready(ctx)
	wg.Wait()
	switch {
	case err == nil:
		checks["database"], checks["migrations"] = stateUp, stateUp
	case errors.Is(err, errNotMigrated):
		checks["database"], checks["migrations"] = stateUp, statePending
	default:
		checks["database"], checks["migrations"] = stateDown, stateUnknown
	}
	if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "unavailable", "reason": err.Error(), "checks": checks})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "ready", "checks": checks})
}

// writeJSON writes v as a JSON response with the given status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
