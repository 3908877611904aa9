// Package fs is a blobstore.Store on the local filesystem. A blob with key k
// lives at <root>/k[0:2]/k[2:4]/k with a JSON sidecar k.json holding its
// content type and creation time. Files are written to a temporary file in
// <root>/.tmp, synced and renamed into place, so a blob file is either
// complete or absent. Those a crash leaves behind are removed by
// RemoveTemp, which the one process that puts calls when it starts.
//
// It is also a blobstore.Purger, on the local clock: a blob's put time is
// its data file's modification time, set to the time of every Put (also
// one of content already stored, which only touches the file, or rewrites
// it when it belongs to another user and cannot be touched). A lock per
// key, in the process, makes Put's check-and-touch and Purge's
// check-and-remove atomic with respect to each other. That lock does not
// reach other processes: while Put, Stat, Open and Delete may be shared by
// several processes, purging is only safe with ONE process per directory
// (as the embedded default runs).
package fs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/imageservice/imageservice/blobstore"
)

// Store is a filesystem blob store. It is safe for concurrent use; see the
// package documentation about several processes.
type Store struct {
	root    string
	tmp     string
	maxSize int64
	locks   keyLocks
}

// Option configures a Store.
type Option func(*Store)

// WithMaxSize sets the largest blob Put accepts (default
// blobstore.DefaultMaxSize).
func WithMaxSize(n int64) Option {
	return func(s *Store) {
		if n > 0 {
			s.maxSize = n
		}
	}
}

var (
	_ blobstore.Store  = (*Store)(nil)
	_ blobstore.Purger = (*Store)(nil)
)

// meta is the sidecar of a blob.
type meta struct {
	ContentType string    `json:"content_type"`
	CreatedAt   time.Time `json:"created_at"`
}

// New returns a store under root, creating the directory if needed.
func New(root string, opts ...Option) (*Store, error) {
	s := &Store{root: root, tmp: filepath.Join(root, ".tmp"), maxSize: blobstore.DefaultMaxSize}
	for _, o := range opts {
		o(s)
	}
	if err := os.MkdirAll(s.tmp, 0o755); err != nil {
		return nil, fmt.Errorf("open blob store %s: %w", root, err)
	}
	return s, nil
}

func (s *Store) dataPath(key string) string {
	return filepath.Join(s.root, key[0:2], key[2:4], key)
}

// Put implements blobstore.Store. Content already stored is not written
// again, but its data file is touched: its modification time, the blob's
// put time, becomes now. A data file that cannot be touched because it
// belongs to another user (a data directory restored with the wrong
// owner) is rewritten instead, as a fresh Put writes it (its sidecar is
// kept): the new file is ours, put now.
func (s *Store) Put(ctx context.Context, contentType string, r io.Reader) (blobstore.Blob, error) {
	tmp, key, err := s.writeTemp(ctx, r)
	if err != nil {
		return blobstore.Blob{}, fmt.Errorf("put blob: %w", err)
	}
	defer os.Remove(tmp) // no-op once renamed
	defer s.locks.lock(key)()
	dst := s.dataPath(key)
	err = touch(dst)
	switch {
	case errors.Is(err, iofs.ErrNotExist):
		err = s.install(key, tmp, blobstore.NormalizeContentType(contentType))
	case errors.Is(err, iofs.ErrPermission):
		if rerr := place(tmp, dst); rerr != nil {
			err = fmt.Errorf("data file cannot be touched (%w) nor rewritten: %w", err, rerr)
		} else {
			err = nil
		}
	}
	if err != nil {
		return blobstore.Blob{}, fmt.Errorf("put blob %s: %w", key, err)
	}
	b, err := s.Stat(ctx, key)
	if err != nil {
		return blobstore.Blob{}, fmt.Errorf("put blob: %w", err)
	}
	return b, nil
}

// touch sets a file's modification time to now.
func touch(path string) error {
	now := time.Now()
	return chtimes(path, now, now)
}

// chtimes is os.Chtimes. It is a variable for one test only, which makes
// it fail with EPERM as it does on a file owned by another user: the tests
// run as root, for whom it never fails. A test that sets it must not run
// in parallel with others of the package, and restores it.
var chtimes = os.Chtimes

// writeTemp copies r into a synced temporary file and returns its path and
// the content's key.
func (s *Store) writeTemp(ctx context.Context, r io.Reader) (path, key string, err error) {
	if err := ctx.Err(); err != nil {
		return "", "", err
	}
	f, err := os.CreateTemp(s.tmp, putPrefix+"*")
	if err != nil {
		return "", "", err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(r, s.maxSize+1))
	if err != nil {
		return "", "", fmt.Errorf("read content: %w", err)
	}
	if n > s.maxSize {
		return "", "", fmt.Errorf("%w: more than %d bytes", blobstore.ErrTooLarge, s.maxSize)
	}
	if err := ctx.Err(); err != nil {
		return "", "", err
	}
	if err := f.Sync(); err != nil {
		return "", "", err
	}
	if err := f.Close(); err != nil {
		return "", "", err
	}
	return f.Name(), hex.EncodeToString(h.Sum(nil)), nil
}

// install writes the sidecar, then moves the content into place.
func (s *Store) install(key, tmp, contentType string) error {
	dst := s.dataPath(key)
	dir := filepath.Dir(dst)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	m, err := json.Marshal(meta{ContentType: contentType, CreatedAt: time.Now().UTC()})
	if err != nil {
		return err
	}
	if err := s.writeFileAtomic(dst+".json", m); err != nil {
		return err
	}
	return place(tmp, dst)
}

// place moves the complete temporary file tmp to dst, over any file there,
// and sets its modification time to now.
func place(tmp, dst string) error {
	if err := os.Rename(tmp, dst); err != nil {
		return err
	}
	if err := touch(dst); err != nil {
		return err
	}
	return syncDir(filepath.Dir(dst))
}

func (s *Store) writeFileAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(s.tmp, metaPrefix+"*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Stat implements blobstore.Store.
func (s *Store) Stat(ctx context.Context, key string) (blobstore.Blob, error) {
	if err := s.check(ctx, key); err != nil {
		return blobstore.Blob{}, fmt.Errorf("stat blob: %w", err)
	}
	fi, err := os.Stat(s.dataPath(key))
	if err != nil {
		return blobstore.Blob{}, fmt.Errorf("stat blob %s: %w", key, notFound(err))
	}
	return s.describe(key, fi), nil
}

// Open implements blobstore.Store. The reader is the *os.File.
func (s *Store) Open(ctx context.Context, key string) (blobstore.Reader, blobstore.Blob, error) {
	if err := s.check(ctx, key); err != nil {
		return nil, blobstore.Blob{}, fmt.Errorf("open blob: %w", err)
	}
	f, err := os.Open(s.dataPath(key))
	if err != nil {
		return nil, blobstore.Blob{}, fmt.Errorf("open blob %s: %w", key, notFound(err))
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, blobstore.Blob{}, fmt.Errorf("open blob %s: %w", key, err)
	}
	return f, s.describe(key, fi), nil
}

// Delete implements blobstore.Store.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := s.check(ctx, key); err != nil {
		return fmt.Errorf("delete blob: %w", err)
	}
	defer s.locks.lock(key)()
	if err := s.remove(key); err != nil {
		return fmt.Errorf("delete blob %s: %w", key, err)
	}
	return nil
}

func (s *Store) check(ctx context.Context, key string) error {
	if err := blobstore.CheckKey(key); err != nil {
		return err
	}
	return ctx.Err()
}

// describe builds a Blob from the data file and its sidecar; a missing or
// unreadable sidecar falls back to the default type and the file's mtime.
func (s *Store) describe(key string, fi iofs.FileInfo) blobstore.Blob {
	b := blobstore.Blob{Key: key, Size: fi.Size(), ContentType: blobstore.DefaultContentType,
		CreatedAt: fi.ModTime().UTC(), PutAt: fi.ModTime().UTC()}
	data, err := os.ReadFile(s.dataPath(key) + ".json")
	if err != nil {
		return b
	}
	var m meta
	if json.Unmarshal(data, &m) != nil {
		return b
	}
	if m.ContentType != "" {
		b.ContentType = m.ContentType
	}
	if !m.CreatedAt.IsZero() {
		b.CreatedAt = m.CreatedAt
	}
	return b
}

func notFound(err error) error {
	if errors.Is(err, iofs.ErrNotExist) {
		return blobstore.ErrNotFound
	}
	return err
}
