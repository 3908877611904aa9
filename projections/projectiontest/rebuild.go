package projectiontest

import (
	"context"
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imageservice/imageservice/projections"
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

// needRebuild skips the test for backends without Rebuild.
func needRebuild(t *testing.T, e *env) {
	t.Helper()
	if e.Rebuild == nil {
		t.Skip("the backend has no Rebuild")
	}
}

// testRebuildWhileReading rebuilds under a live projector while a reader
// keeps querying: the reader only ever sees the complete model, the
// rebuilt model equals the incremental one, and the live projector
// carries on afterwards.
func testRebuildWhileReading(t *testing.T, e *env) {
	needRebuild(t, e)
	e.startProjector(t)
	all, active := seed(t, e, 30)
	e.waitFor(t, lastPos(all...))
	before := e.snapshot(t, ids(all...))

	stopReader, readerResult := e.readContinuously(t, active)
	var calls [][2]int64
	progress := func(done, total int64, rate float64) { calls = append(calls, [2]int64{done, total}) }
	if err := e.Rebuild(context.Background(), progress); err != nil {
		t.Fatal(err)
	}
	stopReader()
	if reads, err := readerResult(); err != nil || reads == 0 {
		t.Errorf("reader during rebuild: %d reads, %v", reads, err)
	}
	if after := e.snapshot(t, ids(all...)); !reflect.DeepEqual(after, before) {
		t.Errorf("rebuilt model differs from the incremental one")
	}
	checkProgress(t, calls, rebuildBatch)
	if cp := e.checkpoint(t); cp != lastPos(all...) {
		t.Errorf("checkpoint after rebuild %s, want %s", cp, lastPos(all...))
	}
	next := e.upload(t, t0.Add(time.Hour), 1)
	e.waitFor(t, next.pos) // the live projector resumed
	if got := e.snapshot(t, ids(next)); !reflect.DeepEqual(got.images[next.state.ID],
		projections.ImageFromState(e.replay(t, next.state.ID))) {
		t.Errorf("image written after the rebuild = %+v", got.images[next.state.ID])
	}
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
			page, err := e.Model.Images(ctx, projections.MaxPageSize, "")
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

// testRebuildEmptyLogTwice: rebuilds of an empty log succeed and leave an
// empty model.
func testRebuildEmptyLogTwice(t *testing.T, e *env) {
	needRebuild(t, e)
	for range 2 {
		var last [2]int64
		if err := e.Rebuild(context.Background(), func(done, total int64, _ float64) {
			last = [2]int64{done, total}
		}); err != nil {
			t.Fatal(err)
		}
		if last != [2]int64{0, 0} {
			t.Errorf("progress of an empty rebuild ended at %v", last)
		}
	}
	page, err := e.Model.Images(context.Background(), 10, "")
	if err != nil || len(page.Items) != 0 {
		t.Errorf("Images after empty rebuild = %+v, %v", page, err)
	}
}
