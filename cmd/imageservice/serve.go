package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	espg "github.com/imageservice/imageservice/eventstore/postgres"
)

// runServe runs the service until ctx ends (SIGINT or SIGTERM).
func runServe(ctx context.Context, _ []string, stdout, stderr io.Writer) error {
	log := slog.New(slog.NewJSONHandler(stderr, nil))
	dbURL := databaseURL()
	if dbURL == "" {
		return errors.New("DATABASE_URL is not set (nor POSTGRES_HOST): the service needs PostgreSQL; see README")
	}
	pool, err := connect(ctx, dbURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	if env("MIGRATE") != "false" {
		if err := migrate(ctx, pool); err != nil {
			return err
		}
	}
	ln, err := net.Listen("tcp", env("HTTP_ADDR"))
	if err != nil {
		return fmt.Errorf("listen on HTTP_ADDR %q: %w", env("HTTP_ADDR"), err)
	}
	fmt.Fprintf(stdout, "imageservice listening on http://%s\n", ln.Addr())
	return serveHTTP(ctx, ln, health(pool), log)
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

// migrate applies every component's migrations.
func migrate(ctx context.Context, pool *pgxpool.Pool) error {
	return espg.Migrate(ctx, pool)
}

// health answers /healthz (the process is up) and /readyz (the database
// answers and is migrated).
func health(pool *pgxpool.Pool) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
		defer cancel()
		if err := pool.Ping(ctx); err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "reason": "database unreachable"})
			return
		}
		pending, err := espg.Pending(ctx, pool)
		if err != nil || pending {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "reason": "database not migrated"})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
	return mux
}

// serveHTTP serves h on ln until ctx ends, then shuts down gracefully.
func serveHTTP(ctx context.Context, ln net.Listener, h http.Handler, log *slog.Logger) error {
	srv := &http.Server{
		Handler:           h,
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
