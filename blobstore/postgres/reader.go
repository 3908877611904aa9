package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/imageservice/imageservice/blobstore"
)

// chunkSize is how much a chunkReader fetches per query; blobs up to this size
// are read whole by Open.
const chunkSize = 1 << 20

// chunkReader reads a large blob in chunks with substring(), so that serving
// it (or a range of it) never holds more than one chunk in memory. The data
// column uses EXTERNAL storage, which makes such substrings cheap.
type chunkReader struct {
	ctx  context.Context
	pool *pgxpool.Pool
	key  string
	size int64

	mu       sync.Mutex
	off      int64  // position of Read and Seek
	chunk    []byte // cached chunk starting at chunkOff
	chunkOff int64
}

// ReadAt implements io.ReaderAt; it is safe for concurrent use.
func (r *chunkReader) ReadAt(p []byte, off int64) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.readAt(p, off)
}

func (r *chunkReader) readAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("read blob: negative offset")
	}
	n := 0
	for n < len(p) {
		if off >= r.size {
			return n, io.EOF
		}
		if err := r.load(off); err != nil {
			return n, err
		}
		c := copy(p[n:], r.chunk[off-r.chunkOff:])
		n += c
		off += int64(c)
	}
	return n, nil
}

// load makes sure the cached chunk holds the byte at off.
func (r *chunkReader) load(off int64) error {
	if r.chunk != nil && off >= r.chunkOff && off < r.chunkOff+int64(len(r.chunk)) {
		return nil
	}
	start := off - off%chunkSize
	var data []byte
	err := r.pool.QueryRow(r.ctx, `SELECT substring(data FROM $2 FOR $3) FROM blobs WHERE key = $1`,
		r.key, start+1, chunkSize).Scan(&data)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("read blob %s: %w", r.key, blobstore.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("read blob %s at %d: %w", r.key, start, err)
	}
	if len(data) == 0 || start+int64(len(data)) <= off {
		return fmt.Errorf("read blob %s at %d: %w", r.key, off, io.ErrUnexpectedEOF)
	}
	r.chunk, r.chunkOff = data, start
	return nil
}

// Read implements io.Reader.
func (r *chunkReader) Read(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.off >= r.size {
		return 0, io.EOF
	}
	n, err := r.readAt(p, r.off)
	r.off += int64(n)
	if errors.Is(err, io.EOF) && n > 0 {
		err = nil
	}
	return n, err
}

// Seek implements io.Seeker.
func (r *chunkReader) Seek(offset int64, whence int) (int64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += r.off
	case io.SeekEnd:
		offset += r.size
	default:
		return 0, errors.New("seek blob: invalid whence")
	}
	if offset < 0 {
		return 0, errors.New("seek blob: negative position")
	}
	r.off = offset
	return offset, nil
}

// Close implements io.Closer; it drops the cached chunk.
func (r *chunkReader) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.chunk = nil
	return nil
}
