package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/imageservice/imageservice/eventstore"
	"github.com/imageservice/imageservice/projections/postgres"
	"github.com/imageservice/imageservice/projections/projectiontest"
)

// TestRebuildWhileReading rebuilds under a live projector while a reader
// keeps querying: the reader only ever sees the complete model, the
// rebuilt model equals the incremental one, and the live projector
// carries on afterwards.
func TestRebuildWhileReading(t *testing.T) {
	t.Parallel()
	e := newEnv(t, postgres.WithRebuildBatchSize(5))
	e.StartProjector(t)
	all, active := projectiontest.Seed(t, e.Env, 30)
	e.WaitFor(t, projectiontest.LastPos(all...))
	before, indexes, oid := e.Snapshot(t, projectiontest.IDs(all...)), indexNames(t, e), tableOID(t, e)

	stopReader, readerResult := e.ReadContinuously(t, active)
	var calls [][2]int64
	progress := func(done, total int64, rate float64) { calls = append(calls, [2]int64{done, total}) }
	runner := &eventstore.Runner{Holder: "test", LeaseTTL: 3 * time.Second}
	if err := e.model.Rebuild(context.Background(), runner, progress); err != nil {
		t.Fatal(err)
	}
	stopReader()
	if reads, err := readerResult(); err != nil || reads == 0 {
		t.Errorf("reader during rebuild: %d reads, %v", reads, err)
	}
	if after := e.Snapshot(t, projectiontest.IDs(all...)); !reflect.DeepEqual(after, before) {
		t.Errorf("rebuilt model differs from the incremental one")
	}
	if got := indexNames(t, e); !slices.Equal(got, indexes) {
		t.Errorf("indexes after rebuild %v, want %v", got, indexes)
	}
	if tableOID(t, e) == oid {
		t.Errorf("image_view was not replaced")
	}
	projectiontest.CheckProgress(t, calls, 5)
	if cp := e.Checkpoint(t); cp != projectiontest.LastPos(all...) {
		t.Errorf("checkpoint after rebuild %s, want %s", cp, projectiontest.LastPos(all...))
	}
	next := e.Upload(t, t0.Add(time.Hour), 1)
	e.WaitFor(t, next.Pos) // the live projector resumed
}

// indexNames lists the read models' indexes.
func indexNames(t *testing.T, e *env) []string {
	t.Helper()
	rows, err := e.pool.Query(context.Background(), `SELECT tablename || '.' || indexname FROM pg_indexes
WHERE schemaname = current_schema() AND tablename IN ('image_view', 'dither_view') ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		names = append(names, n)
	}
	if len(names) != 6 {
		t.Errorf("indexes %v: want 6", names)
	}
	return names
}

// tableOID returns the oid of image_view.
func tableOID(t *testing.T, e *env) uint32 {
	t.Helper()
	var oid uint32
	if err := e.pool.QueryRow(context.Background(), `SELECT 'image_view'::regclass::oid`).Scan(&oid); err != nil {
		t.Fatal(err)
	}
	return oid
}

// TestRebuildEmptyLogTwice: rebuilds of an empty log succeed, and repeated
// rebuilds keep the index names.
func TestRebuildEmptyLogTwice(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	indexes := indexNames(t, e)
	for range 2 {
		var last [2]int64
		if err := e.model.Rebuild(context.Background(), nil, func(done, total int64, _ float64) {
			last = [2]int64{done, total}
		}); err != nil {
			t.Fatal(err)
		}
		if last != [2]int64{0, 0} {
			t.Errorf("progress of an empty rebuild ended at %v", last)
		}
	}
	if got := indexNames(t, e); !slices.Equal(got, indexes) {
		t.Errorf("indexes after rebuilds %v, want %v", got, indexes)
	}
	page, err := e.model.Images(context.Background(), 10, "")
	if err != nil || len(page.Items) != 0 {
		t.Errorf("Images after empty rebuild = %+v, %v", page, err)
	}
}

// TestConcurrentRebuilds: a rebuild waits for another one instead of
// taking its lease; both complete.
func TestConcurrentRebuilds(t *testing.T) {
	t.Parallel()
	e := newEnv(t, postgres.WithRebuildBatchSize(3))
	e.StartProjector(t)
	all, _ := projectiontest.Seed(t, e.Env, 8)
	e.WaitFor(t, projectiontest.LastPos(all...))
	before := e.Snapshot(t, projectiontest.IDs(all...))
	errs := make(chan error, 2)
	for i := range 2 {
		go func() {
			errs <- e.model.Rebuild(context.Background(), &eventstore.Runner{Holder: fmt.Sprint("r", i), LeaseTTL: 3 * time.Second}, nil)
		}()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if after := e.Snapshot(t, projectiontest.IDs(all...)); !reflect.DeepEqual(after, before) {
		t.Errorf("model after concurrent rebuilds differs")
	}
}

// TestRebuildLosingLeaseKeepsModel: a rebuild whose lease is taken over
// before the swap fails and leaves the live model and checkpoint alone.
func TestRebuildLosingLeaseKeepsModel(t *testing.T) {
	t.Parallel()
	e := newEnv(t, postgres.WithRebuildBatchSize(2))
	e.StartProjector(t)
	all, _ := projectiontest.Seed(t, e.Env, 3)
	e.WaitFor(t, projectiontest.LastPos(all...))
	oid, cp := tableOID(t, e), e.Checkpoint(t)
	steal := func(int64, int64, float64) {
		_, err := e.pool.Exec(context.Background(), `UPDATE leases SET epoch = epoch + 1 WHERE subscription = $1`, e.model.Name())
		if err != nil {
			t.Error(err)
		}
	}
	err := e.model.Rebuild(context.Background(), &eventstore.Runner{LeaseTTL: 3 * time.Second}, steal)
	if !errors.Is(err, eventstore.ErrLeaseLost) {
		t.Fatalf("Rebuild = %v, want ErrLeaseLost", err)
	}
	if tableOID(t, e) != oid || e.Checkpoint(t) != cp {
		t.Errorf("a failed rebuild replaced the model or moved the checkpoint")
	}
	if _, err := e.model.Image(context.Background(), all[0].State.ID); err != nil {
		t.Error(err)
	}
}
