// Package blobtest is the conformance suite of blobstore backends. Each
// backend's tests call Exercise with a constructor of fresh, empty stores,
// which must be Purgers too.
package blobtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imageservice/imageservice/blobstore"
)

// Store is what a backend provides: a blob store that can purge.
type Store interface {
	blobstore.Store
	blobstore.Purger
}

// Exercise runs the conformance suite. Every case is a parallel subtest with
// its own store from newStore, which should register its own cleanup.
func Exercise(t *testing.T, newStore func(t *testing.T) Store) {
	t.Helper()
	cases := []struct {
		name string
		run  func(t *testing.T, s Store)
	}{
		{"RoundTrip", testRoundTrip},
		{"Dedup", testDedup},
		{"Stat", testStat},
		{"EmptyBlob", testEmptyBlob},
		{"DefaultContentType", testDefaultContentType},
		{"NotFound", testNotFound},
		{"BadKey", testBadKey},
		{"ConcurrentSamePut", testConcurrentSamePut},
		{"ConcurrentDistinctPuts", testConcurrentDistinctPuts},
		{"LargeBlob", testLargeBlob},
		{"SeekAndReadAt", testSeekAndReadAt},
		{"Delete", testDelete},
		{"ReaderError", testReaderError},
		{"PutAt", testPutAt},
		{"Purge", testPurge},
		{"PurgeSparesRecentPut", testPurgeSparesRecentPut},
		{"PurgeBadKey", testPurgeBadKey},
		{"Keys", testKeys},
		{"PurgeRace", testPurgeRace},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.run(t, newStore(t))
		})
	}
}

func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func put(t *testing.T, s blobstore.Store, ct string, data []byte) blobstore.Blob {
	t.Helper()
	b, err := s.Put(ctx(t), ct, bytes.NewReader(data))
	if err != nil {
		t.Fatalf("Put: %v", err)
	}
	return b
}

func readAll(t *testing.T, s blobstore.Store, key string) ([]byte, blobstore.Blob) {
	t.Helper()
	r, b, err := s.Open(ctx(t), key)
	if err != nil {
		t.Fatalf("Open(%s): %v", key, err)
	}
	defer r.Close()
	data, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return data, b
}

func testRoundTrip(t *testing.T, s Store) {
	data := []byte("\x89PNG\r\n\x1a\n some image bytes")
	before := time.Now().Add(-time.Minute)
	b := put(t, s, "image/png", data)
	if b.Key != blobstore.KeyOf(data) || b.Size != int64(len(data)) || b.ContentType != "image/png" {
		t.Fatalf("Put returned %+v", b)
	}
	if b.CreatedAt.Before(before) || b.CreatedAt.After(time.Now().Add(time.Minute)) {
		t.Fatalf("CreatedAt %v not around now", b.CreatedAt)
	}
	got, ob := readAll(t, s, b.Key)
	if !bytes.Equal(got, data) {
		t.Fatalf("read %q, want %q", got, data)
	}
	if ob.Key != b.Key || ob.Size != b.Size || ob.ContentType != b.ContentType {
		t.Fatalf("Open blob %+v, Put blob %+v", ob, b)
	}
}

func testDedup(t *testing.T, s Store) {
	data := []byte("same content")
	a := put(t, s, "image/png", data)
	b := put(t, s, "image/gif", data)
	if a.Key != b.Key || b.ContentType != "image/png" || b.Size != a.Size {
		t.Fatalf("second put %+v, first %+v", b, a)
	}
	if !a.CreatedAt.Equal(b.CreatedAt) {
		t.Fatalf("CreatedAt changed: %v then %v", a.CreatedAt, b.CreatedAt)
	}
	c := put(t, s, "image/png", []byte("other content"))
	if c.Key == a.Key {
		t.Fatal("different content, same key")
	}
}

func testStat(t *testing.T, s Store) {
	b := put(t, s, "image/jpeg", []byte("jpeg-ish"))
	st, err := s.Stat(ctx(t), b.Key)
	if err != nil {
		t.Fatal(err)
	}
	if st.Key != b.Key || st.Size != b.Size || st.ContentType != "image/jpeg" || !st.CreatedAt.Equal(b.CreatedAt) {
		t.Fatalf("Stat %+v, Put %+v", st, b)
	}
}

func testEmptyBlob(t *testing.T, s Store) {
	b := put(t, s, "text/plain", nil)
	if b.Size != 0 || b.Key != blobstore.KeyOf(nil) {
		t.Fatalf("empty blob %+v", b)
	}
	if got, _ := readAll(t, s, b.Key); len(got) != 0 {
		t.Fatalf("read %d bytes", len(got))
	}
}

func testDefaultContentType(t *testing.T, s Store) {
	for i, ct := range []string{"", "not a / type;;"} {
		b := put(t, s, ct, []byte{byte(i)})
		if b.ContentType != blobstore.DefaultContentType {
			t.Fatalf("content type %q stored as %q", ct, b.ContentType)
		}
	}
}

func testNotFound(t *testing.T, s Store) {
	key := blobstore.KeyOf([]byte("never stored"))
	if _, err := s.Stat(ctx(t), key); !errors.Is(err, blobstore.ErrNotFound) {
		t.Fatalf("Stat: %v", err)
	}
	if r, _, err := s.Open(ctx(t), key); !errors.Is(err, blobstore.ErrNotFound) {
		if r != nil {
			r.Close()
		}
		t.Fatalf("Open: %v", err)
	}
	if err := s.Delete(ctx(t), key); err != nil {
		t.Fatalf("Delete missing: %v", err)
	}
}

func testBadKey(t *testing.T, s Store) {
	good := blobstore.KeyOf([]byte("x"))
	bad := []string{"", "abc", strings.ToUpper(good), good + "0", good[:63] + "g",
		"../../../../etc/passwd", good[:62] + "/.", strings.Repeat("0", 63) + "\x00"}
	for _, key := range bad {
		if _, err := s.Stat(ctx(t), key); !errors.Is(err, blobstore.ErrInvalidKey) {
			t.Errorf("Stat(%q): %v", key, err)
		}
		if r, _, err := s.Open(ctx(t), key); !errors.Is(err, blobstore.ErrInvalidKey) {
			if r != nil {
				r.Close()
			}
			t.Errorf("Open(%q): %v", key, err)
		}
		if err := s.Delete(ctx(t), key); !errors.Is(err, blobstore.ErrInvalidKey) {
			t.Errorf("Delete(%q): %v", key, err)
		}
	}
}

func testConcurrentSamePut(t *testing.T, s Store) {
	data := randomBytes(t, 256<<10)
	const n = 8
	var wg sync.WaitGroup
	blobs := make([]blobstore.Blob, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { blobs[i], errs[i] = s.Put(ctx(t), "image/png", bytes.NewReader(data)) })
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("put %d: %v", i, errs[i])
		}
		if blobs[i].Key != blobstore.KeyOf(data) || blobs[i].Size != int64(len(data)) {
			t.Fatalf("put %d: %+v", i, blobs[i])
		}
	}
	if got, _ := readAll(t, s, blobs[0].Key); !bytes.Equal(got, data) {
		t.Fatal("content differs after concurrent puts")
	}
}

func testConcurrentDistinctPuts(t *testing.T, s Store) {
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			data := bytes.Repeat([]byte{byte(i)}, 1000+i)
			b, err := s.Put(ctx(t), "application/octet-stream", bytes.NewReader(data))
			if err == nil && b.Key != blobstore.KeyOf(data) {
				err = errors.New("wrong key")
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("put %d: %v", i, err)
		}
	}
}

func testLargeBlob(t *testing.T, s Store) {
	data := randomBytes(t, 5<<20)
	b := put(t, s, "image/png", data)
	if b.Size != int64(len(data)) {
		t.Fatalf("size %d", b.Size)
	}
	if got, _ := readAll(t, s, b.Key); !bytes.Equal(got, data) {
		t.Fatal("large blob differs")
	}
}

func testSeekAndReadAt(t *testing.T, s Store) {
	data := []byte("0123456789abcdefghij")
	b := put(t, s, "text/plain", data)
	r, _, err := s.Open(ctx(t), b.Key)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if end, err := r.Seek(0, io.SeekEnd); err != nil || end != int64(len(data)) {
		t.Fatalf("Seek end = %d, %v", end, err)
	}
	if _, err := r.Seek(10, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 5)
	if _, err := io.ReadFull(r, buf); err != nil || string(buf) != "abcde" {
		t.Fatalf("read after seek %q, %v", buf, err)
	}
	if _, err := r.ReadAt(buf, 3); err != nil || string(buf) != "34567" {
		t.Fatalf("ReadAt %q, %v", buf, err)
	}
	if n, err := r.ReadAt(buf, 18); n != 2 || !errors.Is(err, io.EOF) {
		t.Fatalf("ReadAt past end = %d, %v", n, err)
	}
}

func testDelete(t *testing.T, s Store) {
	b := put(t, s, "image/png", []byte("to delete"))
	if err := s.Delete(ctx(t), b.Key); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Stat(ctx(t), b.Key); !errors.Is(err, blobstore.ErrNotFound) {
		t.Fatalf("Stat after delete: %v", err)
	}
	if err := s.Delete(ctx(t), b.Key); err != nil {
		t.Fatalf("second delete: %v", err)
	}
	again := put(t, s, "image/gif", []byte("to delete"))
	if again.ContentType != "image/gif" {
		t.Fatalf("re-put after delete kept old type: %+v", again)
	}
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("disk on fire") }

func testReaderError(t *testing.T, s Store) {
	_, err := s.Put(ctx(t), "image/png", io.MultiReader(strings.NewReader("partial"), failingReader{}))
	if err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Fatalf("Put with failing reader: %v", err)
	}
	if _, err := s.Stat(ctx(t), blobstore.KeyOf([]byte("partial"))); !errors.Is(err, blobstore.ErrNotFound) {
		t.Fatalf("partial content stored: %v", err)
	}
}

func randomBytes(t *testing.T, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}
