package fs

import (
	"bytes"
	"context"
	"errors"
	"io"
	iofs "io/fs"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/imageservice/imageservice/blobstore"
)

// refuseTouch makes chtimes fail with EPERM, as it does for a file owned
// by another user, on the files refused says, until the test ends.
func refuseTouch(t *testing.T, refused func(fi os.FileInfo) bool) {
	t.Helper()
	chtimes = func(path string, atime, mtime time.Time) error {
		if fi, err := os.Stat(path); err == nil && refused(fi) {
			return &iofs.PathError{Op: "chtimes", Path: path, Err: syscall.EPERM}
		}
		return os.Chtimes(path, atime, mtime)
	}
	t.Cleanup(func() { chtimes = os.Chtimes })
}

// storedLongAgo puts data and sets its data file's put time an hour back,
// as in a data directory restored from a backup; it returns the blob and
// the data file.
func storedLongAgo(t *testing.T, s *Store, data []byte) (blobstore.Blob, os.FileInfo) {
	t.Helper()
	b, err := s.Put(context.Background(), "image/png", bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(s.dataPath(b.Key), old, old); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(s.dataPath(b.Key))
	if err != nil {
		t.Fatal(err)
	}
	return b, fi
}

// readBack returns the content stored under key.
func readBack(t *testing.T, s *Store, key string) []byte {
	t.Helper()
	rd, _, err := s.Open(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	got, err := io.ReadAll(rd)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// A Put of content already stored whose data file cannot be touched (it
// belongs to another user) rewrites the file: the content and its
// sidecar are kept, the put time is the Put's, as Stat and Keys report
// it, and a Purge of blobs put before the Put keeps it.
func TestPutRewritesAFileItCannotTouch(t *testing.T) {
	s, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	data := []byte("restored with another owner")
	first, theirs := storedLongAgo(t, s, data)
	refuseTouch(t, func(fi os.FileInfo) bool { return os.SameFile(fi, theirs) })
	cutoff, err := s.Now(ctx)
	if err != nil {
		t.Fatal(err)
	}
	again, err := s.Put(ctx, "image/gif", bytes.NewReader(data))
	if err != nil {
		t.Fatalf("Put of content stored in a file that cannot be touched: %v", err)
	}
	if again.PutAt.Before(cutoff) || !again.CreatedAt.Equal(first.CreatedAt) || again.ContentType != "image/png" {
		t.Errorf("second Put: PutAt %v (want at or after %v), CreatedAt %v (want %v), type %s (want the first's)",
			again.PutAt, cutoff, again.CreatedAt, first.CreatedAt, again.ContentType)
	}
	if got := readBack(t, s, first.Key); !bytes.Equal(got, data) {
		t.Fatalf("content after the rewrite: %q, want %q", got, data)
	}
	if fi, err := os.Stat(s.dataPath(first.Key)); err != nil || os.SameFile(fi, theirs) {
		t.Errorf("data file after the Put: %v, rewritten %t; want a new file", err, err == nil && !os.SameFile(fi, theirs))
	}
	if listed, err := s.Keys(ctx, cutoff, "", 10); err != nil || len(listed) != 0 {
		t.Errorf("Keys put before the second Put: %v, %v; want none", listed, err)
	}
	if ok, err := s.Purge(ctx, first.Key, cutoff); ok || err != nil {
		t.Fatalf("Purge of blobs put before the second Put: %t, %v; want kept", ok, err)
	}
	if got := readBack(t, s, first.Key); !bytes.Equal(got, data) {
		t.Fatalf("content after the Purge: %q, want %q", got, data)
	}
}

// A Put of content already stored that can neither touch nor rewrite its
// data file (here: no file's times can be set) fails, saying so, and the
// content stays.
func TestPutFailsWhenItCannotTouchNorRewrite(t *testing.T) {
	s, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	data := []byte("nothing can be touched")
	first, _ := storedLongAgo(t, s, data)
	refuseTouch(t, func(os.FileInfo) bool { return true })
	_, err = s.Put(context.Background(), "image/png", bytes.NewReader(data))
	if !errors.Is(err, iofs.ErrPermission) || !strings.Contains(err.Error(), "nor rewritten") || !strings.Contains(err.Error(), first.Key) {
		t.Fatalf("Put: %v; want a permission error naming the blob and saying it could not be rewritten", err)
	}
	if got := readBack(t, s, first.Key); !bytes.Equal(got, data) {
		t.Fatalf("content after the failed Put: %q, want %q", got, data)
	}
}
