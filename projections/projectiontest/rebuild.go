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

// Seed uploads n images with up to 3 dithers each and deletes every
// seventh; it returns the images and how many are not deleted.
func Seed(t *testing.T, e *Env, n int) ([]*Image, int) {
	t.Helper()
	var all []*Image
	active := 0
	for i := range n {
		img := e.Upload(t, t0.Add(time.Duration(i)*time.Second), i%4)
		if i%7 == 3 {
			e.Remove(t, img)
		} else {
			active++
		}
		all = append(all, img)
	}
	return all, active
}

// needRebuild skips the test for backends without Rebuild.
func needRebuild(t *testing.T, e *Env) {
	t.Helper()
	if e.Rebuild == nil {
		t.Skip("the backend has no Rebuild")
	}
}

// testRebuildWhileReading rebuilds under a live projector while a reader
// keeps querying: the reader only ever sees the complete model, the
// rebuilt model equals the incremental one, and the live projector
// carries on afterwards.
func testRebuildWhileReading(t *testing.T, e *Env) {
	needRebuild(t, e)
	e.StartProjector(t)
	all, active := Seed(t, e, 30)
	e.WaitFor(t, LastPos(all...))
	before := e.Snapshot(t, IDs(all...))

	stopReader, readerResult := e.ReadContinuously(t, active)
	var calls [][2]int64
	progress := func(done, total int64, rate float64) { calls = append(calls, [2]int64{done, total}) }
	if err := e.Rebuild(context.Background(), progress); err != nil {
		t.Fatal(err)
	}
	stopReader()
	if reads, err := readerResult(); err != nil || reads == 0 {
		t.Errorf("reader during rebuild: %d reads, %v", reads, err)
	}
	if after := e.Snapshot(t, IDs(all...)); !reflect.DeepEqual(after, before) {
		t.Errorf("rebuilt model differs from the incremental one")
	}
	CheckProgress(t, calls, rebuildBatch)
	if cp := e.Checkpoint(t); cp != LastPos(all...) {
		t.Errorf("checkpoint after rebuild %s, want %s", cp, LastPos(all...))
	}
	next := e.Upload(t, t0.Add(time.Hour), 1)
	e.WaitFor(t, next.Pos) // the live projector resumed
	if got := e.Snapshot(t, IDs(next)); !reflect.DeepEqual(got.images[next.State.ID],
		projections.ImageFromState(e.Replay(t, next.State.ID))) {
		t.Errorf("image written after the rebuild = %+v", got.images[next.State.ID])
	}
}

// ReadContinuously queries the model in a loop until stopped, checking
// that it always sees exactly active images; the result reports the
// number of reads and the first inconsistency.
func (e *Env) ReadContinuously(t *testing.T, active int) (stop func(), result func() (int64, error)) {
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

// CheckProgress checks the progress calls of a rebuild: one per batch,
// done growing by at most a batch, and a last call with done == total.
func CheckProgress(t *testing.T, calls [][2]int64, batch int64) {
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
func testRebuildEmptyLogTwice(t *testing.T, e *Env) {
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
