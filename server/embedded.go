package server

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	blobfs "github.com/imageservice/imageservice/blobstore/fs"
	"github.com/imageservice/imageservice/commands"
	"github.com/imageservice/imageservice/eventstore"
	essqlite "github.com/imageservice/imageservice/eventstore/sqlite"
	"github.com/imageservice/imageservice/metrics"
	"github.com/imageservice/imageservice/processors"
	projsqlite "github.com/imageservice/imageservice/projections/sqlite"
)

// The embedded default keeps everything under one directory: the SQLite
// database (events, checkpoints, leases, read models) and the blobs.
const (
	// DatabaseFile is the SQLite database under the data directory.
	DatabaseFile = "imageservice.db"
	// BlobDir is the blob store under the data directory.
	BlobDir = "blobs"
)

// OpenEmbedded opens (creating and migrating them if needed) the embedded
// default's database and blob store under dir.
func OpenEmbedded(ctx context.Context, dir string) (*essqlite.Store, *blobfs.Store, error) {
	return openEmbedded(ctx, dir, essqlite.Options{})
}

// openEmbedded is OpenEmbedded with the event store's options.
func openEmbedded(ctx context.Context, dir string, opts essqlite.Options) (*essqlite.Store, *blobfs.Store, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, nil, fmt.Errorf("data directory %s: %w", dir, err)
	}
	store, err := essqlite.Open(ctx, filepath.Join(dir, DatabaseFile), opts)
	if err != nil {
		return nil, nil, err
	}
	if err := projsqlite.Migrate(ctx, store); err != nil {
		store.Close()
		return nil, nil, err
	}
	blobs, err := blobfs.New(filepath.Join(dir, BlobDir))
	if err != nil {
		store.Close()
		return nil, nil, fmt.Errorf("blob store: %w", err)
	}
	return store, blobs, nil
}

// NewEmbedded assembles the service on the embedded default under dir:
// SQLite and files, dithering with the inline processor. Run starts its
// background work; Close closes the database.
func NewEmbedded(ctx context.Context, dir string, cfg Config) (*Server, error) {
	log := logger(cfg)
	m := metrics.New(log)
	store, blobs, err := openEmbedded(ctx, dir, essqlite.Options{ObserveAppend: m.ObserveAppend})
	if err != nil {
		return nil, err
	}
	// The server is the one process that puts blobs into the directory
	// (the admin commands only open it), and it has put none yet: the
	// temporary files there are those of Puts a crash cut short.
	files, bytes, err := blobs.RemoveTemp()
	if err != nil {
		log.Warn("blob store: temporary files left by an earlier run not all removed", "err", err)
	}
	if files > 0 {
		log.Info("blob store: removed temporary files left by an earlier run", "files", files, "bytes", bytes)
	}
	reads := projsqlite.New(store)
	return assemble(storage{
		noNotifications: true, // the inline processor dithers only
		metrics:         m,
		store:           store, blobs: blobs, reads: reads,
		cmds: commands.SQLite{Store: store, Blobs: blobs},
		procs: func(cmds *commands.Service, pc processors.Config) (Processor, error) {
			return processors.NewInline(store, cmds, blobs, pc), nil
		},
		ready: func(ctx context.Context) error {
			if err := store.ReadDB().PingContext(ctx); err != nil {
				return errUnreachable
			}
			if pending, err := projsqlite.Pending(ctx, store); err != nil || pending {
				return errNotMigrated
			}
			return nil
		},
		readModel:     eventstore.CheckpointKey{Subscription: projsqlite.DefaultName},
		subscriptions: processors.InlineSubscriptions(cfg.Processors),
		close:         func() { _ = store.Close() },
	}, cfg)
}
