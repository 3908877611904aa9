package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/imageservice/imageservice/blobgc"
	"github.com/imageservice/imageservice/processors"
	"github.com/imageservice/imageservice/processors/cloudsync"
	"github.com/imageservice/imageservice/processors/notify"
	"github.com/imageservice/imageservice/server"
	"github.com/imageservice/imageservice/tracing"
)

// newLogger writes JSON lines to w, with durations as Go writes them
// ("1.5s", "100ms") rather than as counts of nanoseconds.
func newLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Value.Kind() == slog.KindDuration {
				a.Value = slog.StringValue(a.Value.Duration().String())
			}
			return a
		},
	}))
}

// runServe runs the service until ctx ends (SIGINT or SIGTERM).
func runServe(ctx context.Context, _ []string, stdout, stderr io.Writer) error {
	log := newLogger(stderr)
	cfg, err := loadServeConfig()
	if err != nil {
		return err
	}
	tracer, err := tracing.New(ctx, tracing.Options{Getenv: env, Logger: log})
	if err != nil {
		return err
	}
	defer shutdownTracing(tracer, log)
	sinks, topics, err := bridgeFromEnv()
	if err != nil {
		return err
	}
	defer closeSinks(sinks)
	ln, err := net.Listen("tcp", cfg.httpAddr)
	if err != nil {
		return fmt.Errorf("listen on HTTP_ADDR %q: %w", cfg.httpAddr, err)
	}
	if cfg.publicURL, err = publicURL(ln.Addr().String()); err != nil {
		return err
	}
	srv, closeServer, err := openServer(ctx, cfg, server.Config{
		PublicURL: cfg.publicURL, AutoDither: cfg.autoDither,
		MaxUploadBytes: cfg.maxBytes, MaxPixels: cfg.maxPixels, Logger: log,
		NoProcessors: !cfg.processors,
		Processors: processors.Config{
			Concurrency: int(cfg.concurrency), JobTimeout: cfg.jobTimeout, RescueAfter: cfg.rescueAfter,
			Cloud: cfg.cloud, Notify: cfg.notify,
		},
		Sinks: sinks, BridgeTopics: topics,
		PrivateReads: !cfg.publicRead, Production: env("ENV") == "production",
		AllowedOrigins: splitList(env("ALLOWED_ORIGINS")),
		WriteRate:      cfg.writeRate, WriteBurst: int(cfg.writeBurst),
		LiveConnectionsPerClient: cfg.liveConnections(), TrustedProxies: cfg.trustedProxies,
		SubscriptionBuffer: int(cfg.subscriptionBuffer),
		TracerProvider:     tracer.TracerProvider(),
		BlobRetention:      cfg.blobRetention, BlobSweepInterval: cfg.sweepInterval,
	}, log)
	if err != nil {
		return err
	}
	defer closeServer()
	if open, err := srv.Keys().Open(ctx); err == nil && open {
		log.Warn("no API key exists: the service runs open, every request may read and write (create one with: imageservice apikey create --name NAME)")
	}
	compatLns, err := listenCompat(srv, tracer.TracerProvider())
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() { srv.Run(ctx) })
	fmt.Fprintf(stdout, "imageservice listening on http://%s (open %s)\n", ln.Addr(), cfg.publicURL)
	serveCompat(ctx, &wg, compatLns, cfg.bodyTimeout, stdout, log)
	err = serveHTTP(ctx, ln, srv.Handler(), cfg.bodyTimeout, log)
	cancel()
	wg.Wait()
	return err
}

// shutdownTracing exports the spans still queued, waiting 5 s at most
// for a slow collector.
func shutdownTracing(p *tracing.Provider, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.Shutdown(ctx); err != nil {
		log.Warn("tracing: spans still queued at shut-down were not exported", "err", err)
	}
}

// serveConfig is the configuration serve reads from the environment.
type serveConfig struct {
	databaseURL, httpAddr, publicURL string
	dataDir                          string
	migrate, autoDither, processors  bool
	publicRead                       bool
	writeRate                        float64
	writeBurst, subscriptionBuffer   int64
	liveConnectionsPerClient         int64
	trustedProxies                   server.TrustedProxies
	maxBytes, maxPixels, concurrency int64
	jobTimeout, rescueAfter          time.Duration
	bodyTimeout                      time.Duration
	blobRetention, sweepInterval     time.Duration
	cloud                            *cloudsync.Config
	notify                           notify.Config
}

func loadServeConfig() (serveConfig, error) {
	cfg := serveConfig{databaseURL: databaseURL(), httpAddr: env("HTTP_ADDR"), dataDir: env("DATA_DIR")}
	if env("PUBLIC_URL") != "" {
		if _, err := publicURL(""); err != nil {
			return cfg, err
		}
	}
	var errs []error
	var err error
	cfg.migrate, err = envBool("MIGRATE")
	errs = append(errs, err)
	cfg.autoDither, err = envBool("AUTO_DITHER")
	errs = append(errs, err)
	cfg.processors, err = envBool("PROCESSORS")
	errs = append(errs, err)
	cfg.publicRead, err = envBool("PUBLIC_READ")
	errs = append(errs, err)
	cfg.writeRate, err = strconv.ParseFloat(env("WRITE_RATE"), 64)
	if err != nil || cfg.writeRate < 0 {
		errs = append(errs, fmt.Errorf("WRITE_RATE must be a number of writes per second (0 for no limit), not %q", env("WRITE_RATE")))
	}
	cfg.writeBurst, err = envInt("WRITE_BURST")
	errs = append(errs, err)
	cfg.subscriptionBuffer, err = envInt("SUBSCRIPTION_BUFFER")
	errs = append(errs, err)
	if env("LIVE_CONNECTIONS_PER_CLIENT") != "0" {
		cfg.liveConnectionsPerClient, err = envInt("LIVE_CONNECTIONS_PER_CLIENT")
		errs = append(errs, err)
	}
	cfg.trustedProxies, err = server.ParseTrustedProxies(env("TRUSTED_PROXIES"))
	if err != nil {
		errs = append(errs, fmt.Errorf("TRUSTED_PROXIES: %w", err))
	}
	cfg.cloud, _, err = cloudsync.FromEnv(os.Getenv)
	errs = append(errs, err)
	cfg.notify, err = notifyConfig()
	errs = append(errs, err)
	cfg.maxBytes, err = envInt("MAX_UPLOAD_BYTES")
	errs = append(errs, err)
	cfg.maxPixels, err = envInt("MAX_PIXELS")
	errs = append(errs, err)
	if env("DITHER_CONCURRENCY") != "" {
		cfg.concurrency, err = envInt("DITHER_CONCURRENCY")
		errs = append(errs, err)
	}
	cfg.bodyTimeout, err = envDuration("REQUEST_BODY_TIMEOUT")
	errs = append(errs, err)
	cfg.jobTimeout, err = envDuration("JOB_TIMEOUT")
	errs = append(errs, err)
	cfg.rescueAfter, err = envDuration("JOB_RESCUE_AFTER")
	errs = append(errs, err)
	if err == nil && cfg.rescueAfter <= cfg.jobTimeout {
		errs = append(errs, fmt.Errorf("JOB_RESCUE_AFTER (%s) must be longer than JOB_TIMEOUT (%s)", cfg.rescueAfter, cfg.jobTimeout))
	}
	cfg.blobRetention, err = blobRetention(cfg.jobTimeout)
	errs = append(errs, err)
	cfg.sweepInterval, err = envDuration("BLOB_SWEEP_INTERVAL")
	errs = append(errs, err)
	if err == nil && cfg.sweepInterval < blobgc.MinInterval {
		errs = append(errs, fmt.Errorf("BLOB_SWEEP_INTERVAL (%s) must be at least %s", cfg.sweepInterval, blobgc.MinInterval))
	}
	return cfg, errors.Join(errs...)
}

// liveConnections is LIVE_CONNECTIONS_PER_CLIENT as server.Config takes
// it: there 0 means the default, and a negative value no limit.
func (c serveConfig) liveConnections() int {
	if c.liveConnectionsPerClient == 0 {
		return -1
	}
	return int(c.liveConnectionsPerClient)
}

// notifyConfig reads SMTP_URL, WEBHOOK_SECRET and WEBHOOK_ALLOW_PRIVATE.
func notifyConfig() (notify.Config, error) {
	cfg := notify.Config{WebhookSecret: env("WEBHOOK_SECRET")}
	var err error
	if cfg.AllowPrivate, err = envBool("WEBHOOK_ALLOW_PRIVATE"); err != nil {
		return cfg, err
	}
	if raw := env("SMTP_URL"); raw != "" {
		cfg.SMTP, err = notify.ParseSMTPURL(raw)
	}
	return cfg, err
}

// connect opens a pool and checks that the database answers.
func connect(ctx context.Context, dbURL string) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(dbURL)
	if err != nil {
		// The URL may hold a password: name the variable, not the value.
		return nil, errors.New("DATABASE_URL is not a valid PostgreSQL URL")
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to the database: %w", err)
	}
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := pool.Ping(pingCtx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to the database at %s:%d: %w", cfg.ConnConfig.Host, cfg.ConnConfig.Port, err)
	}
	return pool, nil
}

// serveHTTP serves h on ln until ctx ends, then shuts down gracefully.
// A request must send its body within bodyTimeout.
func serveHTTP(ctx context.Context, ln net.Listener, h http.Handler, bodyTimeout time.Duration, log *slog.Logger) error {
	srv := &http.Server{
		Handler:           bodyDeadline(h, bodyTimeout),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve HTTP: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down")
	shutCtx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil {
		return fmt.Errorf("shut down HTTP: %w", err)
	}
	return nil
}

// openServer assembles the service on PostgreSQL when a database URL is
// configured, else on the embedded default under DATA_DIR. The returned
// function closes it.
func openServer(ctx context.Context, cfg serveConfig, scfg server.Config, log *slog.Logger) (*server.Server, func(), error) {
	if cfg.databaseURL == "" {
		log.Info("embedded default: no DATABASE_URL, keeping everything under DATA_DIR", "data_dir", cfg.dataDir)
		srv, err := server.NewEmbedded(ctx, cfg.dataDir, scfg)
		if err != nil {
			return nil, nil, err
		}
		return srv, srv.Close, nil
	}
	pool, err := connect(ctx, cfg.databaseURL)
	if err != nil {
		return nil, nil, err
	}
	if cfg.migrate {
		if err := server.Migrate(ctx, pool); err != nil {
			pool.Close()
			return nil, nil, err
		}
	}
	srv, err := server.New(pool, scfg)
	if err != nil {
		pool.Close()
		return nil, nil, err
	}
	return srv, func() { srv.Close(); pool.Close() }, nil
}

// splitList splits a comma-separated setting, dropping empty items.
func splitList(v string) []string {
	var out []string
	for _, item := range strings.Split(v, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// bodyDeadline gives a request d (REQUEST_BODY_TIMEOUT) to send its body,
// so a slow body cannot hold a connection for ever. The connection's read
// deadline is lifted as soon as the whole body has arrived, so neither a
// long response (a slow download, an event stream) nor a websocket, whose
// upgrade request has no body, is cut. (A server-wide ReadTimeout would
// cut them.) It is not lifted when the handler answers without reading
// the body, since the server then reads what is left of it. A request
// whose body ran out of time is answered 408 with a JSON error, whatever
// the handler made of the truncated body.
func bodyDeadline(next http.Handler, d time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength == 0 {
			next.ServeHTTP(w, r) // no body to wait for
			return
		}
		rc := http.NewResponseController(w)
		_ = rc.SetReadDeadline(time.Now().Add(d))
		var lift sync.Once
		body := &deadlineBody{ReadCloser: r.Body, left: r.ContentLength,
			arrived: func() { lift.Do(func() { _ = rc.SetReadDeadline(time.Time{}) }) }}
		r.Body = body
		next.ServeHTTP(&deadlineWriter{ResponseWriter: w, body: body}, r)
	})
}

// deadlineBody notes a read that failed because the body's time ran out,
// and calls arrived once the whole body has been read: at its end, or once
// its Content-Length is read (a JSON decoder stops there, short of EOF).
type deadlineBody struct {
	io.ReadCloser
	timedOut atomic.Bool
	left     int64 // bytes of a body of known length yet to read; -1 unknown
	arrived  func()
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if b.left > 0 {
		b.left -= int64(n)
	}
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		b.timedOut.Store(true)
	case err == io.EOF || b.left == 0:
		b.arrived()
	}
	return n, err
}

// deadlineWriter answers 408 instead of the handler's response when the
// request's body ran out of time.
type deadlineWriter struct {
	http.ResponseWriter
	body            *deadlineBody
	wrote, replaced bool
}

func (w *deadlineWriter) WriteHeader(status int) {
	if w.wrote {
		return
	}
	w.wrote = true
	if !w.body.timedOut.Load() {
		w.ResponseWriter.WriteHeader(status)
		return
	}
	w.replaced = true
	h := w.Header()
	h.Del("Content-Length")
	h.Set("Content-Type", "application/json")
	h.Set("Connection", "close")
	w.ResponseWriter.WriteHeader(http.StatusRequestTimeout)
	_, _ = io.WriteString(w.ResponseWriter, `{"errors":[{"message":"the request body did not arrive within REQUEST_BODY_TIMEOUT","extensions":{"code":"REQUEST_TIMEOUT"}}]}`)
}

func (w *deadlineWriter) Write(p []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	if w.replaced {
		return len(p), nil
	}
	return w.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach the connection.
func (w *deadlineWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
