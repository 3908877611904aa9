package postgres_test

import (
	"context"
	"log"
	"os"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/imageservice/imageservice/eventstore"
	espg "github.com/imageservice/imageservice/eventstore/postgres"
	"github.com/imageservice/imageservice/projections"
	"github.com/imageservice/imageservice/projections/postgres"
)

// The body of an "imageservice replay" command: migrate, then rebuild the
// read model from the log with a progress bar, while any running replicas
// keep serving the old model.
func ExampleReadModel_Rebuild() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, os.Getenv("DATABASE_URL"))
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
	if err := espg.Migrate(ctx, pool); err != nil {
		log.Fatal(err)
	}
	if err := postgres.Migrate(ctx, pool); err != nil {
		log.Fatal(err)
	}
	store := espg.Open(pool, espg.Options{})
	defer store.Close()
	model := postgres.New(store)
	if err := model.Rebuild(ctx, &eventstore.Runner{}, projections.ProgressBar(os.Stderr)); err != nil {
		log.Fatal(err)
	}
}

// Serving: run the projector in the background and read your own writes
// with WaitFor.
func ExampleReadModel_Run() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, os.Getenv("DATABASE_URL"))
	if err != nil {
		log.Fatal(err)
	}
	store := espg.Open(pool, espg.Options{})
	model := postgres.New(store)
	go func() { _ = model.Run(ctx, &eventstore.Runner{Store: store}) }()

	var res eventstore.AppendResult // from store.Append(...)
	if len(res.Positions) > 0 {
		if err := model.WaitFor(ctx, res.Positions[len(res.Positions)-1]); err != nil {
			log.Fatal(err)
		}
	}
	page, err := model.Images(ctx, 20, "")
	if err != nil {
		log.Fatal(err)
	}
	log.Println(len(page.Items), "images")
}
