package fs

import (
	"context"
	"errors"
	"fmt"
	iofs "io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/imageservice/imageservice/blobstore"
)

// Now implements blobstore.Purger: the local clock, which Put records in
// the data files' modification times.
func (s *Store) Now(ctx context.Context) (time.Time, error) {
	if err := ctx.Err(); err != nil {
		return time.Time{}, err
	}
	return time.Now(), nil
}

// Purge implements blobstore.Purger: under the key's lock, it removes the
// blob when its data file was last modified before putBefore.
func (s *Store) Purge(ctx context.Context, key string, putBefore time.Time) (bool, error) {
	if err := s.check(ctx, key); err != nil {
		return false, fmt.Errorf("purge blob: %w", err)
	}
	defer s.locks.lock(key)()
	fi, err := os.Stat(s.dataPath(key))
	if errors.Is(err, iofs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("purge blob %s: %w", key, err)
	}
	if !fi.ModTime().Before(putBefore) {
		return false, nil
	}
	if err := s.remove(key); err != nil {
		return false, fmt.Errorf("purge blob %s: %w", key, err)
	}
	return true, nil
}

// remove deletes a blob's data file, then its sidecar.
func (s *Store) remove(key string) error {
	p := s.dataPath(key)
	for _, f := range []string{p, p + ".json"} {
		if err := os.Remove(f); err != nil && !errors.Is(err, iofs.ErrNotExist) {
			return err
		}
	}
	return nil
}

// Keys implements blobstore.Purger by walking the directories in name
// order, which is key order. The blobs have Key, Size and PutAt set.
func (s *Store) Keys(ctx context.Context, putBefore time.Time, after string, limit int) ([]blobstore.Blob, error) {
	var out []blobstore.Blob
	err := s.walk(ctx, after, func(key string, fi iofs.FileInfo) bool {
		if fi.ModTime().Before(putBefore) {
			out = append(out, blobstore.Blob{Key: key, Size: fi.Size(), PutAt: fi.ModTime().UTC()})
		}
		return len(out) < limit
	})
	if err != nil {
		return nil, fmt.Errorf("list blobs put before %s: %w", putBefore, err)
	}
	return out, nil
}

// walk calls fn with each blob whose key sorts after after, in key order,
// until fn returns false. Blobs removed meanwhile are skipped.
func (s *Store) walk(ctx context.Context, after string, fn func(key string, fi iofs.FileInfo) bool) error {
	tops, err := subdirs(s.root, prefix(after, 0))
	if err != nil {
		return err
	}
	for _, top := range tops {
		from := ""
		if top == prefix(after, 0) {
			from = prefix(after, 2)
		}
		mids, err := subdirs(filepath.Join(s.root, top), from)
		if err != nil {
			return err
		}
		for _, mid := range mids {
			if err := ctx.Err(); err != nil {
				return err
			}
			more, err := s.walkDir(filepath.Join(s.root, top, mid), after, fn)
			if err != nil || !more {
				return err
			}
		}
	}
	return nil
}

// walkDir calls fn with the blobs of one leaf directory whose keys sort
// after after; it reports whether fn asked for more.
func (s *Store) walkDir(dir, after string, fn func(key string, fi iofs.FileInfo) bool) (bool, error) {
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, iofs.ErrNotExist) {
		return false, err
	}
	for _, e := range entries {
		key := e.Name()
		if key <= after || !blobstore.ValidKey(key) {
			continue
		}
		fi, err := e.Info()
		if errors.Is(err, iofs.ErrNotExist) {
			continue
		}
		if err != nil {
			return false, err
		}
		if !fn(key, fi) {
			return false, nil
		}
	}
	return true, nil
}

// prefix returns the two characters of after at i (a level of the
// layout), or "" when after is shorter.
func prefix(after string, i int) string {
	if len(after) < i+2 {
		return ""
	}
	return after[i : i+2]
}

// subdirs lists the two-hex-digit subdirectories of dir that sort at or
// after from, in name order.
func subdirs(dir, from string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, iofs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		if n := e.Name(); e.IsDir() && isHexPair(n) && n >= from {
			out = append(out, n)
		}
	}
	return out, nil
}

// isHexPair reports whether a directory name is two lowercase hex digits,
// a level of the layout.
func isHexPair(name string) bool {
	return len(name) == 2 && isHex(name[0]) && isHex(name[1])
}

func isHex(c byte) bool { return ('0' <= c && c <= '9') || ('a' <= c && c <= 'f') }

// keyLocks is a striped lock per key: keys are hashes, so 256 stripes by
// the first byte spread them evenly and bound the memory.
type keyLocks struct{ stripes [256]sync.Mutex }

// lock locks the key's stripe and returns its unlock.
func (l *keyLocks) lock(key string) func() {
	m := &l.stripes[stripe(key)]
	m.Lock()
	return m.Unlock
}

// stripe maps a key (validated: lowercase hex) to its stripe.
func stripe(key string) int {
	return int(hexDigit(key[0]))<<4 | int(hexDigit(key[1]))
}

func hexDigit(c byte) byte {
	if c >= 'a' {
		return c - 'a' + 10
	}
	return c - '0'
}
