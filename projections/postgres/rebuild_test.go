package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imageservice/imageservice/eventstore"
	"github.com/imageservice/imageservice/projections"
	"github.com/imageservice/imageservice/projections/postgres"
)

// seed uploads n images with up to 3 dithers each and deletes every
// seventh; it returns the images and how many are not deleted.
func seed(t *testing.T, e *env, n int) ([]*image, int) {
	t.Helper()
	var all []*image
	active := 0
	for i := range n {
		img := e.upload(t, t0.Add(time.Duration(i)*time.Second), i%4)
		if i%7 == 3 {
			e.remove(t, img)
		} else {
			active++
		}
		all = append(all, img)
	}
	return all, active
}

// TestRebuildWhileReading rebuilds under a live projector while a reader
// keeps querying: the reader only ever sees the complete model, the
// rebuilt model equals the incremental one, and the live projector
// carries on afterwards.
func TestRebuildWhileReading(t *testing.T) {
	t.Parallel()
	e := newEnv(t, postgres.WithRebuildBatchSize(5))
	e.startProjector(t)
	all, active := seed(t, e, 30)
	e.waitFor(t, lastPos(all...))
	before, indexes, oid := e.snapshot(t, ids(all...)), indexNames(t, e), tableOID(t, e)

	stopReader, readerResult := e.readContinuously(t, active)
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
	if after := e.snapshot(t, ids(all...)); !reflect.DeepEqual(after, before) {
		t.Errorf("rebuilt model differs from the incremental one")
	}
	if got := indexNames(t, e); !slices.Equal(got, indexes) {
		t.Errorf("indexes after rebuild %v, want %v", got, indexes)
	}
	if tableOID(t, e) == oid {
		t.Errorf("image_view was not replaced")
	}
	checkProgress(t, calls, 5)
	if cp := e.checkpoint(t); cp != lastPos(all...) {
		t.Errorf("checkpoint after rebuild %s, want %s", cp, lastPos(all...))
	}
	next := e.upload(t, t0.Add(time.Hour), 1)
	e.waitFor(t, next.pos) // the live projector resumed
}

// readContinuously queries the model in a loop until stopped, checking
// that it always sees exactly active images; the result reports the
// number of reads and the first inconsistency.
func (e *env) readContinuously(t *testing.T, active int) (stop func(), result func() (int64, error)) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var reads atomic.Int64
	var firstErr error
	var wg sync.WaitGroup
	wg.Go(func() {
		for ctx.Err() == nil {
			page, err := e.model.Images(ctx, projections.MaxPageSize, "")
			if err == nil && len(page.Items) != active {
				err = fmt.Errorf("saw %d images, want %d", len(page.Items), active)
			}
			if err != nil && ctx.Err() == nil {
				firstErr = err
				return
			}
			reads.Add(1)
		}
	})
	return cancel, func() (int64, error) { wg.Wait(); return reads.Load(), firstErr }
}

// checkProgress checks the progress calls of a rebuild: one per batch,
// done growing by at most a batch, and a last call with done == total.
func checkProgress(t *testing.T, calls [][2]int64, batch int64) {
	t.Helper()
	if len(calls) < 3 {
		t.Fatalf("progress called %d times", len(calls))
	}
	for i := 1; i < len(calls); i++ {
		if step := calls[i][0] - calls[i-1][0]; step < 0 || step > batch {
			t.Errorf("progress %v after %v: want steps of at most %d", calls[i], calls[i-1], batch)
		}
	}
	if last := calls[len(calls)-1]; last[0] != last[1] || last[0] == 0 {
		t.Errorf("last progress call %v: want done == total", last)
	}
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
	if len(names) != 4 {
		t.Errorf("indexes %v: want 4", names)
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
	e.startProjector(t)
	all, _ := seed(t, e, 8)
	e.waitFor(t, lastPos(all...))
	before := e.snapshot(t, ids(all...))
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
	if after := e.snapshot(t, ids(all...)); !reflect.DeepEqual(after, before) {
		t.Errorf("model after concurrent rebuilds differs")
	}
}

// TestRebuildLosingLeaseKeepsModel: a rebuild whose lease is taken over
// before the swap fails and leaves the live model and checkpoint alone.
func TestRebuildLosingLeaseKeepsModel(t *testing.T) {
	t.Parallel()
	e := newEnv(t, postgres.WithRebuildBatchSize(2))
	e.startProjector(t)
	all, _ := seed(t, e, 3)
	e.waitFor(t, lastPos(all...))
	oid, cp := tableOID(t, e), e.checkpoint(t)
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
	if tableOID(t, e) != oid || e.checkpoint(t) != cp {
		t.Errorf("a failed rebuild replaced the model or moved the checkpoint")
	}
	if _, err := e.model.Image(context.Background(), all[0].state.ID); err != nil {
		t.Error(err)
	}
}
