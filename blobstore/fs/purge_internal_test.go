package fs

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/imageservice/imageservice/blobstore"
)

// TestKeysAcrossDirectories pages through keys one at a time where a page
// ends in one directory and the next key sorts lower at the level below
// (ab/00 after aa/f0): every key is listed once, in order.
func TestKeysAcrossDirectories(t *testing.T) {
	s, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, p := range []string{"aaf0", "aaf1", "ab00", "ab01", "b000", "ff00"} {
		key := p + strings.Repeat("0", 60)
		keys = append(keys, key)
		path := s.dataPath(key)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(p), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	after := ""
	for range len(keys) + 1 {
		page, err := s.Keys(context.Background(), time.Now().Add(time.Hour), after, 1)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		got = append(got, page[0].Key)
		after = page[0].Key
	}
	if !slices.Equal(got, keys) {
		t.Fatalf("listed %v, want %v", got, keys)
	}
	if !blobstore.ValidKey(keys[0]) {
		t.Fatal("test keys are not valid keys")
	}
}
