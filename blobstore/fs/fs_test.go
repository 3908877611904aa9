package fs_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
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
