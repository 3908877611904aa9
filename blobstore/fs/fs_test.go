package fs_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/imageservice/imageservice/blobstore"
	"github.com/imageservice/imageservice/blobstore/blobtest"
	blobfs "github.com/imageservice/imageservice/blobstore/fs"
)

func TestConformance(t *testing.T) {
	blobtest.Exercise(t, func(t *testing.T) blobtest.Store {
		s, err := blobfs.New(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestLayout(t *testing.T) {
	root := t.TempDir()
	s, err := blobfs.New(root)
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Put(context.Background(), "image/png", bytes.NewReader([]byte("layout")))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(root, b.Key[:2], b.Key[2:4], b.Key)
	for _, f := range []string{p, p + ".json"} {
		if _, err := os.Stat(f); err != nil {
			t.Fatalf("expected file: %v", err)
		}
	}
	left, _ := os.ReadDir(filepath.Join(root, ".tmp"))
	if len(left) != 0 {
		t.Fatalf("temporary files left: %v", left)
	}
}

func TestMaxSize(t *testing.T) {
	root := t.TempDir()
	s, err := blobfs.New(root, blobfs.WithMaxSize(10))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(context.Background(), "", bytes.NewReader(make([]byte, 10))); err != nil {
		t.Fatalf("at the limit: %v", err)
	}
	_, err = s.Put(context.Background(), "", bytes.NewReader(make([]byte, 11)))
	if !errors.Is(err, blobstore.ErrTooLarge) {
		t.Fatalf("over the limit: %v", err)
	}
	left, _ := os.ReadDir(filepath.Join(root, ".tmp"))
	if len(left) != 0 {
		t.Fatalf("temporary files left: %v", left)
	}
}

func TestCanceledContext(t *testing.T) {
	s, err := blobfs.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Put(ctx, "", bytes.NewReader([]byte("x"))); !errors.Is(err, context.Canceled) {
		t.Fatalf("Put: %v", err)
	}
}

// A crash mid-Put leaves its temporary files under .tmp; RemoveTemp, as a
// restarted process calls it, removes them and says how many bytes they
// held, and touches nothing else: stored blobs, and files in .tmp that are
// not the store's.
func TestRemoveTemp(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	s, err := blobfs.New(root)
	if err != nil {
		t.Fatal(err)
	}
	kept, err := s.Put(ctx, "image/png", bytes.NewReader([]byte("kept")))
	if err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(root, ".tmp")
	left := map[string]int{"put-1234": 100, "put-5678": 0, "meta-9012": 10}
	for name, n := range left {
		if err := os.WriteFile(filepath.Join(tmp, name), make([]byte, n), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(tmp, "notes.txt"), []byte("not the store's"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(tmp, "put-dir"), 0o755); err != nil {
		t.Fatal(err)
	}

	s, err = blobfs.New(root) // the restart
	if err != nil {
		t.Fatal(err)
	}
	files, n, err := s.RemoveTemp()
	if err != nil || files != 3 || n != 110 {
		t.Fatalf("RemoveTemp = %d files, %d bytes, %v; want 3 files, 110 bytes", files, n, err)
	}
	var names []string
	entries, err := os.ReadDir(tmp)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if !slices.Equal(names, []string{"notes.txt", "put-dir"}) {
		t.Errorf(".tmp holds %v after RemoveTemp, want only what is not the store's", names)
	}
	if _, err := s.Stat(ctx, kept.Key); err != nil {
		t.Errorf("a stored blob after RemoveTemp: %v", err)
	}
	if files, n, err := s.RemoveTemp(); err != nil || files != 0 || n != 0 {
		t.Errorf("RemoveTemp again = %d files, %d bytes, %v; want nothing", files, n, err)
	}
	if _, err := s.Put(ctx, "", bytes.NewReader([]byte("after"))); err != nil {
		t.Errorf("Put after RemoveTemp: %v", err)
	}
}
