package blobtest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/imageservice/imageservice/blobstore"
)

// nowAfter reads the store's clock until it is strictly after t, and
// returns it: a putBefore that every Put so far is before. (The clock is
// read again only when it has not moved on, as a coarse one may not have.)
func nowAfter(tb testing.TB, s Store, t time.Time) time.Time {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		now, err := s.Now(ctx(tb))
		if err != nil {
			tb.Fatalf("Now: %v", err)
		}
		if now.After(t) {
			return now
		}
		if time.Now().After(deadline) {
			tb.Fatalf("the store's clock stays at %v, not after %v", now, t)
		}
		time.Sleep(time.Millisecond)
	}
}

func purge(t *testing.T, s Store, key string, putBefore time.Time) bool {
	t.Helper()
	ok, err := s.Purge(ctx(t), key, putBefore)
	if err != nil {
		t.Fatalf("Purge(%.8s, %v): %v", key, putBefore, err)
	}
	return ok
}

// testPutAt: Put records its time on the store's clock, Stat and Open
// report it, and a Put of stored content moves it on.
func testPutAt(t *testing.T, s Store) {
	before, err := s.Now(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	b := put(t, s, "image/png", []byte("put at"))
	if b.PutAt.Before(before) {
		t.Fatalf("PutAt %v before the clock read before the Put, %v", b.PutAt, before)
	}
	st, err := s.Stat(ctx(t), b.Key)
	if err != nil || !st.PutAt.Equal(b.PutAt) {
		t.Fatalf("Stat PutAt %v (%v), Put's %v", st.PutAt, err, b.PutAt)
	}
	between := nowAfter(t, s, b.PutAt)
	again := put(t, s, "image/png", []byte("put at"))
	if again.PutAt.Before(between) || !again.CreatedAt.Equal(b.CreatedAt) {
		t.Fatalf("second Put: PutAt %v (want at or after %v), CreatedAt %v (want %v)",
			again.PutAt, between, again.CreatedAt, b.CreatedAt)
	}
	if _, ob := readAll(t, s, b.Key); !ob.PutAt.Equal(again.PutAt) {
		t.Fatalf("Open PutAt %v, last Put's %v", ob.PutAt, again.PutAt)
	}
}

// testPurge: a blob last put before putBefore is removed, once; one put at
// putBefore is not.
func testPurge(t *testing.T, s Store) {
	b := put(t, s, "image/png", []byte("purge me"))
	if purge(t, s, b.Key, b.PutAt) {
		t.Fatal("purged a blob put at putBefore, not before it")
	}
	cutoff := nowAfter(t, s, b.PutAt)
	if !purge(t, s, b.Key, cutoff) {
		t.Fatal("a blob put before putBefore was not purged")
	}
	if _, err := s.Stat(ctx(t), b.Key); !errors.Is(err, blobstore.ErrNotFound) {
		t.Fatalf("Stat after Purge: %v", err)
	}
	if purge(t, s, b.Key, cutoff) {
		t.Fatal("purged a missing blob")
	}
	again := put(t, s, "image/gif", []byte("purge me"))
	if got, _ := readAll(t, s, again.Key); string(got) != "purge me" || again.ContentType != "image/gif" {
		t.Fatalf("Put after Purge: %q, %+v", got, again)
	}
}

// testPurgeSparesRecentPut: a Put of content already stored counts as a
// Put (it touches the blob), so a Purge with an earlier putBefore keeps it.
func testPurgeSparesRecentPut(t *testing.T, s Store) {
	b := put(t, s, "image/png", []byte("still wanted"))
	cutoff := nowAfter(t, s, b.PutAt)
	put(t, s, "image/png", []byte("still wanted"))
	if purge(t, s, b.Key, cutoff) {
		t.Fatal("purged a blob put again after putBefore")
	}
	if got, _ := readAll(t, s, b.Key); string(got) != "still wanted" {
		t.Fatalf("read %q", got)
	}
}

func testPurgeBadKey(t *testing.T, s Store) {
	for _, key := range []string{"", "../../etc/passwd", blobstore.KeyOf(nil)[:63] + "G"} {
		if _, err := s.Purge(ctx(t), key, time.Now()); !errors.Is(err, blobstore.ErrInvalidKey) {
			t.Errorf("Purge(%q): %v", key, err)
		}
	}
}

// testKeys: Keys lists the blobs put before putBefore, in key order, page
// by page.
func testKeys(t *testing.T, s Store) {
	want := map[string]int64{}
	var last time.Time
	for i := range 7 {
		b := put(t, s, "text/plain", bytes.Repeat([]byte{'k'}, i+1))
		want[b.Key], last = b.Size, b.PutAt
	}
	cutoff := nowAfter(t, s, last)
	late := put(t, s, "text/plain", []byte("put after the cutoff"))
	var got []blobstore.Blob
	after := ""
	for page := 0; ; page++ {
		blobs, err := s.Keys(ctx(t), cutoff, after, 3)
		if err != nil {
			t.Fatal(err)
		}
		if len(blobs) > 3 || page > 5 {
			t.Fatalf("page %d: %d blobs, limit 3", page, len(blobs))
		}
		if len(blobs) == 0 {
			break
		}
		got = append(got, blobs...)
		after = blobs[len(blobs)-1].Key
	}
	if len(got) != len(want) {
		t.Fatalf("listed %d blobs, want %d", len(got), len(want))
	}
	for i, b := range got {
		if size, ok := want[b.Key]; !ok || b.Size != size || !b.PutAt.Before(cutoff) {
			t.Errorf("listed %+v (late %.8s)", b, late.Key)
		}
		if i > 0 && got[i-1].Key >= b.Key {
			t.Errorf("keys out of order: %.8s then %.8s", got[i-1].Key, b.Key)
		}
	}
}

// testPurgeRace hammers one key with concurrent Puts and Purges. Each round
// stores the blob, takes a putBefore after that Put, then runs putters and
// purgers at once: a putter's Put records a time at or after putBefore,
// so after it returns the blob must stay readable whatever the purgers do,
// and it must be there at the end of the round.
func testPurgeRace(t *testing.T, s Store) {
	data := randomBytes(t, 4<<10)
	key := blobstore.KeyOf(data)
	purged := 0
	for round := range 30 {
		first := put(t, s, "image/png", data)
		cutoff := nowAfter(t, s, first.PutAt)
		n, errs := raceRound(t, s, data, cutoff)
		for _, err := range errs {
			t.Errorf("round %d: %v", round, err)
		}
		if t.Failed() {
			return
		}
		purged += n
		if got, _ := readAll(t, s, key); !bytes.Equal(got, data) {
			t.Fatalf("round %d: blob differs at the end", round)
		}
	}
	t.Logf("%d purges won over 30 rounds", purged)
}

// raceRound runs 4 putters and 2 purgers of data's key at once and returns
// how many purges removed the blob, and every broken promise.
func raceRound(t *testing.T, s Store, data []byte, cutoff time.Time) (int, []error) {
	key := blobstore.KeyOf(data)
	var (
		mu     sync.Mutex
		errs   []error
		purged int
		wg     sync.WaitGroup
	)
	report := func(err error) { mu.Lock(); errs = append(errs, err); mu.Unlock() }
	start := make(chan struct{})
	for range 2 {
		wg.Go(func() {
			<-start
			for range 6 {
				ok, err := s.Purge(ctx(t), key, cutoff)
				if err != nil {
					report(fmt.Errorf("Purge: %w", err))
					return
				}
				if ok {
					mu.Lock()
					purged++
					mu.Unlock()
				}
			}
		})
	}
	for range 4 {
		wg.Go(func() {
			<-start
			for range 3 {
				if err := putThenRead(t, s, data, cutoff); err != nil {
					report(err)
					return
				}
			}
		})
	}
	close(start)
	wg.Wait()
	return purged, errs
}

// putThenRead puts data and reads it back: since the Put's time is not
// before cutoff, no Purge with cutoff may have removed it.
func putThenRead(t *testing.T, s Store, data []byte, cutoff time.Time) error {
	b, err := s.Put(ctx(t), "image/png", bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("Put: %w", err)
	}
	if b.PutAt.Before(cutoff) {
		return fmt.Errorf("Put after the cutoff %v recorded %v", cutoff, b.PutAt)
	}
	r, _, err := s.Open(ctx(t), b.Key)
	if err != nil {
		return fmt.Errorf("blob put at %v gone before a purge of blobs put before %v: %w", b.PutAt, cutoff, err)
	}
	defer r.Close()
	got, err := io.ReadAll(r)
	if err != nil || !bytes.Equal(got, data) {
		return fmt.Errorf("read back %d bytes, %v", len(got), err)
	}
	return nil
}
