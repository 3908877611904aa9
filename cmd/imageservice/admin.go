package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/imageservice/imageservice/eventstore"
	espg "github.com/imageservice/imageservice/eventstore/postgres"
	essqlite "github.com/imageservice/imageservice/eventstore/sqlite"
	"github.com/imageservice/imageservice/images"
	"github.com/imageservice/imageservice/projections"
	projpg "github.com/imageservice/imageservice/projections/postgres"
	projsqlite "github.com/imageservice/imageservice/projections/sqlite"
	"github.com/imageservice/imageservice/server"
)

// openDatabase connects to the configured database.
func openDatabase(ctx context.Context) (*pgxpool.Pool, error) {
	dbURL := databaseURL()
	if dbURL == "" {
		return nil, errors.New("DATABASE_URL is not set (nor POSTGRES_HOST)")
	}
	return connect(ctx, dbURL)
}

// embedded opens the embedded default's store when no database URL is
// configured; nil when one is.
func embedded(ctx context.Context) (*essqlite.Store, func(), error) {
	if databaseURL() != "" {
		return nil, nil, nil
	}
	store, _, err := server.OpenEmbedded(ctx, env("DATA_DIR"))
	if err != nil {
		return nil, nil, err
	}
	return store, func() { _ = store.Close() }, nil
}

// runMigrate applies every migration and exits.
func runMigrate(ctx context.Context, _ []string, stdout, _ io.Writer) error {
	if store, closeStore, err := embedded(ctx); err != nil || store != nil {
		if err == nil {
			closeStore()
			fmt.Fprintln(stdout, "embedded database migrated under", env("DATA_DIR"))
		}
		return err
	}
	pool, err := openDatabase(ctx)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := server.Migrate(ctx, pool); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "database migrated")
	return nil
}

// runReplay rebuilds the read models from the log. Running replicas keep
// serving the old, complete model until the new one is swapped in.
func runReplay(ctx context.Context, _ []string, _, stderr io.Writer) error {
	if store, closeStore, err := embedded(ctx); err != nil || store != nil {
		if err != nil {
			return err
		}
		defer closeStore()
		return projsqlite.New(store).Rebuild(ctx, projections.ProgressBar(stderr))
	}
	pool, err := openDatabase(ctx)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := server.Migrate(ctx, pool); err != nil {
		return err
	}
	store := espg.Open(pool, espg.Options{})
	defer store.Close()
	err = projpg.New(store).Rebuild(ctx, &eventstore.Runner{}, projections.ProgressBar(stderr))
	if err != nil {
		return fmt.Errorf("replay: %w", err)
	}
	return nil
}

// runEvents prints the log, or one image's stream, as JSON lines.
func runEvents(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("events", flag.ContinueOnError)
	fs.SetOutput(stderr)
	imageID := fs.String("image", "", "print only this image's events (its UUID)")
	limit := fs.Int("limit", 0, "print at most this many events (0: all)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "events takes no arguments, got %q\n", fs.Args())
		return usageError{errors.New("events takes no arguments")}
	}
	if *limit < 0 {
		return fmt.Errorf("--limit must be 0 (every event) or more, not %d", *limit)
	}
	var stream string
	if *imageID != "" {
		id, err := uuid.Parse(*imageID)
		if err != nil {
			return fmt.Errorf("--image %q is not a UUID", *imageID)
		}
		stream = images.StreamID(id)
	}
	enc := json.NewEncoder(stdout)
	if store, closeStore, err := embedded(ctx); err != nil || store != nil {
		if err != nil {
			return err
		}
		defer closeStore()
		return printEvents(ctx, store, stream, *limit, enc)
	}
	pool, err := openDatabase(ctx)
	if err != nil {
		return err
	}
	defer pool.Close()
	store := espg.Open(pool, espg.Options{})
	defer store.Close()
	return printEvents(ctx, store, stream, *limit, enc)
}

// printEvents writes events as JSON lines, reading in batches.
func printEvents(ctx context.Context, store eventstore.Store, stream string, limit int, enc *json.Encoder) error {
	printed := 0
	var after eventstore.Position
	var version int64
	for limit == 0 || printed < limit {
		var batch []eventstore.Event
		var err error
		if stream != "" {
			batch, err = store.ReadStream(ctx, stream, version, 500)
		} else {
			batch, err = store.ReadAll(ctx, after, 500)
		}
		if err != nil {
			return err
		}
		if len(batch) == 0 {
			return nil
		}
		for _, e := range batch {
			if limit > 0 && printed == limit {
				return nil
			}
			if err := enc.Encode(eventLine(e)); err != nil {
				return err
			}
			printed++
			after, version = e.Position, e.StreamVersion
		}
	}
	return nil
}

// eventLine is how the events command prints an event.
func eventLine(e eventstore.Event) map[string]any {
	return map[string]any{
		"position": e.Position.String(), "id": e.ID, "stream": e.StreamID, "version": e.StreamVersion,
		"type": e.Type, "schema_version": e.SchemaVersion, "recorded_at": e.RecordedAt,
		"data": e.Data, "metadata": e.Metadata,
	}
}
