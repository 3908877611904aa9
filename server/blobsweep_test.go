package server_test

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imageservice/imageservice/blobgc"
	"github.com/imageservice/imageservice/blobstore"
	"github.com/imageservice/imageservice/commands"
	"github.com/imageservice/imageservice/eventstore"
	"github.com/imageservice/imageservice/server"
)

// sweepClock is the sweeper's clock in these tests: the real one until
// set, then a fixed time, so that a sweep's cutoff is chosen by the test.
type sweepClock struct{ at atomic.Pointer[time.Time] }

func (c *sweepClock) now(context.Context) (time.Time, error) {
	if at := c.at.Load(); at != nil {
		return *at, nil
	}
	return time.Now(), nil // the background sweep at start: a cutoff an hour back purges nothing here
}

// cutAt makes the next sweeps' cutoff the database's clock now: every blob
// put so far may go, none put from now on.
func (c *sweepClock) cutAt(e *env) time.Time {
	e.t.Helper()
	var now time.Time
	if err := e.pool.QueryRow(context.Background(), `SELECT clock_timestamp()`).Scan(&now); err != nil {
		e.t.Fatal(err)
	}
	at := now.Add(blobgc.MinRetention)
	c.at.Store(&at)
	return now
}

// startSweeping starts the service with the blob sweeper on clock.
func startSweeping(t *testing.T, clock *sweepClock, cfg server.Config) *env {
	cfg.BlobRetention, cfg.BlobSweepInterval, cfg.BlobSweepClock = blobgc.MinRetention, time.Hour, clock.now
	return start(t, cfg)
}

// stored reports whether the blob store holds key.
func (e *env) stored(key string) bool {
	e.t.Helper()
	var n int
	if err := e.pool.QueryRow(context.Background(), `SELECT count(*) FROM blobs WHERE key = $1`, key).Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n == 1
}

func (e *env) sweep() blobgc.Report {
	e.t.Helper()
	r, err := e.srv.BlobSweeper().Sweep(context.Background())
	if err != nil {
		e.t.Fatalf("sweep: %v", err)
	}
	return r
}

func (e *env) deleteImage(id string) {
	e.t.Helper()
	e.mustDo(`mutation ($id: ID!) { deleteImage(input: {id: $id}) { deletedImageId } }`, map[string]any{"id": id}, nil)
}

// ditherResult waits for the image's first dither to complete and returns
// its result's key.
func (e *env) ditherResult(id string) string {
	e.t.Helper()
	var url string
	eventually(e.t, "the dither to complete", func() bool {
		var out struct{ Image imageJSON }
		e.mustDo(`query ($id: ID!) { image(id: $id) { `+imageFields+` } }`, map[string]any{"id": id}, &out)
		d := out.Image.Dithers.Edges[0].Node
		if d.Status == "FAILED" {
			e.t.Fatalf("dither failed: %v", *d.Error)
		}
		if d.Status == "COMPLETED" {
			url = *d.URL
		}
		return url != ""
	})
	return url[len(url)-64:]
}

// TestBlobSweep deletes images and sweeps: the originals, results and
// thumbnails that no live image uses are gone from the store and answer
// 404; a live image's original and result, shared with a deleted image,
// stay; its purged thumbnail is made again.
func TestBlobSweep(t *testing.T) {
	clock := &sweepClock{}
	e := startSweeping(t, clock, server.Config{AutoDither: true})
	a, live, gone := e.mustUpload("a.png", pngBytes(40, 30)), e.mustUpload("a-again.png", pngBytes(40, 30)), e.mustUpload("b.png", pngBytes(41, 30))
	shared, result, goneResult := a.Sha256, e.ditherResult(live.ID), e.ditherResult(gone.ID)
	if e.ditherResult(a.ID) != result {
		t.Fatal("equal dithers of equal bytes differ")
	}
	thumb := func(key string) (int, string) {
		status, _, body := get(t, e.http.URL+"/thumbs/"+key+"?w=160")
		return status, blobstore.KeyOf(body)
	}
	_, liveThumb := thumb(shared)
	_, goneThumb := thumb(gone.Sha256)
	e.deleteImage(a.ID)
	e.deleteImage(gone.ID)

	clock.cutAt(e)
	r := e.sweep()
	if r.Purged != 4 || r.InUse != 2 {
		t.Errorf("report %+v: want 4 purged (the deleted image's original and result, both thumbnails), 2 in use", r)
	}
	for key, want := range map[string]bool{shared: true, result: true, gone.Sha256: false, goneResult: false, liveThumb: false, goneThumb: false} {
		if e.stored(key) != want {
			t.Errorf("blob %.8s stored %t after the sweep, want %t", key, !want, want)
		}
	}
	for _, key := range []string{gone.Sha256, goneResult} {
		if status, _, _ := get(t, e.http.URL+"/blobs/"+key); status != 404 {
			t.Errorf("/blobs/%.8s: %d, want 404", key, status)
		}
	}
	if status, _ := thumb(gone.Sha256); status != 404 {
		t.Errorf("thumbnail of a deleted image: %d, want 404", status)
	}
	if status, key := thumb(shared); status != 200 || key != liveThumb || !e.stored(liveThumb) {
		t.Errorf("thumbnail of a live image after its blob was purged: %d, made again %t", status, e.stored(liveThumb))
	}
	if status, _, _ := get(t, e.http.URL+"/blobs/"+shared); status != 200 {
		t.Errorf("/blobs/ of a live image: %d", status)
	}
	var list struct {
		Images struct {
			Edges []struct{ Node struct{ ID string } }
		}
	}
	e.mustDo(`{ images(first: 10) { edges { node { id } } } }`, nil, &list)
	if len(list.Images.Edges) != 1 || list.Images.Edges[0].Node.ID != live.ID {
		t.Errorf("images after the sweep: %+v", list.Images.Edges)
	}
}

// TestBlobSweepRacesUploads uploads the bytes of a deleted image while
// sweeps run, round after round: each round's cutoff is after the bytes
// were last stored and before the uploads, so the sweeps may purge them;
// yet no upload ends as a live image without its bytes. In odd rounds the
// uploads start once a sweep has marked its start, so that they race its
// listing and purging rather than its wait for the read model.
func TestBlobSweepRacesUploads(t *testing.T) {
	clock := &sweepClock{}
	e := startSweeping(t, clock, server.Config{})
	data := pngBytes(33, 22)
	key := blobstore.KeyOf(data)
	e.deleteImage(e.mustUpload("first.png", data).ID)
	purged := 0
	for round := range 12 {
		clock.cutAt(e)
		marks := e.sweepMarks()
		ids := make([]string, 3)
		var wg sync.WaitGroup
		reports := make([]blobgc.Report, 2)
		errs := make([]error, 2)
		for i := range reports {
			wg.Go(func() { reports[i], errs[i] = e.srv.BlobSweeper().Sweep(context.Background()) })
		}
		if round%2 == 1 {
			eventually(t, "a sweep to mark its start", func() bool { return e.sweepMarks() > marks })
		}
		for i := range ids {
			wg.Go(func() { ids[i] = raceUpload(e, data) })
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("round %d: sweep: %v", round, err)
			}
			purged += reports[i].Purged
		}
		if !e.stored(key) {
			t.Fatalf("round %d: live images %v have no bytes", round, ids)
		}
		for _, id := range ids {
			e.deleteImage(id)
		}
	}
	t.Logf("the sweeps purged the blob %d times in 12 rounds", purged)
}

// sweepMarks counts the sweeps started.
func (e *env) sweepMarks() int {
	var n int
	err := e.pool.QueryRow(context.Background(), `SELECT count(*) FROM events WHERE stream_id = $1 AND event_type = $2`,
		blobgc.Stream, blobgc.TypeSweepStarted).Scan(&n)
	if err != nil {
		e.t.Errorf("count the sweeps: %v", err)
	}
	return n
}

// raceUpload uploads data and returns the image's id; it may run on
// another goroutine than the test's.
func raceUpload(e *env, data []byte) string {
	var res uploadResult
	r := e.send(e.uploadRequest("again.png", data, nil), &res)
	if len(r.Errors) > 0 || res.UploadImage.Image == nil {
		e.t.Errorf("upload: %+v %+v", r.Errors, res.UploadImage.UserErrors)
		return ""
	}
	return res.UploadImage.Image.ID
}

// TestBlobSweepWaitsForHeldBackReadModel holds the log's readers back with
// an open writing transaction, so that an upload is committed but not yet
// visible to the read model (the log's Head does not show it either): a
// sweep that started then must wait for it, not purge its bytes.
func TestBlobSweepWaitsForHeldBackReadModel(t *testing.T) {
	clock := &sweepClock{}
	e := startSweeping(t, clock, server.Config{})
	ctx := context.Background()
	blocker, err := e.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer blocker.Rollback(ctx)
	if _, err := blocker.Exec(ctx, `SELECT pg_current_xact_id()`); err != nil {
		t.Fatal(err)
	}
	img := e.mustUpload("held.png", pngBytes(30, 20))
	clock.cutAt(e)
	marks := e.sweepMarks()
	done := make(chan error, 1)
	var r blobgc.Report
	go func() { r, err = e.srv.BlobSweeper().Sweep(ctx); done <- err }()
	eventually(t, "the sweep to mark its start", func() bool { return e.sweepMarks() > marks })
	if err := blocker.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !e.stored(img.Sha256) || r.Purged != 0 || r.InUse != 1 {
		t.Fatalf("sweep %+v: the live image's bytes stored %t", r, e.stored(img.Sha256))
	}
}

// TestEmbeddedBlobSweep: the embedded default (SQLite, blobs on files)
// sweeps too: a deleted image's file is removed.
func TestEmbeddedBlobSweep(t *testing.T) {
	dir := t.TempDir()
	clock := &sweepClock{}
	srv, err := server.NewEmbedded(context.Background(), dir, server.Config{
		BlobRetention: blobgc.MinRetention, BlobSweepClock: clock.now})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { srv.Run(ctx) })
	defer wg.Wait()
	defer cancel()
	res, err := srv.Commands().Upload(ctx, commands.UploadInput{Body: bytes.NewReader(pngBytes(20, 10)), Filename: "a.png"})
	if err != nil {
		t.Fatal(err)
	}
	key := res.Image.SHA256
	file := filepath.Join(dir, server.BlobDir, key[:2], key[2:4], key)
	if _, err := srv.Commands().Delete(ctx, res.Image.ID, eventstore.Metadata{}); err != nil {
		t.Fatal(err)
	}
	at := time.Now().Add(blobgc.MinRetention)
	clock.at.Store(&at)
	r, err := srv.BlobSweeper().Sweep(ctx)
	if err != nil || r.Purged != 1 {
		t.Fatalf("sweep: %+v, %v", r, err)
	}
	if _, err := os.Stat(file); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the deleted image's blob file: %v", err)
	}
}
