// Package blobstore keeps content-addressed bytes: originals and dither
// results. A blob's key is the lowercase hex SHA-256 of its bytes, so equal
// content is stored once and a key never changes meaning.
//
// The Store interface has one implementation per backend in a subpackage
// (postgres, fs); blobtest.Exercise is the conformance suite every backend's
// tests run. Handler serves blobs over HTTP.
//
// # Purging
//
// Since equal content is stored once and shared, a blob cannot simply be
// deleted when one user of it goes: another may be putting the same bytes
// at that moment. Every backend is therefore also a Purger: each Put,
// also of content already stored, records when the key was last put
// (Blob.PutAt, on the store's clock), and Purge removes a blob only if
// its last Put is before a given time, atomically with respect to
// concurrent Puts. A caller that knows no one used a blob as of time T
// (package blobgc) may then purge with putBefore T: a Put that raced it is
// either seen (and the blob kept) or comes after the removal (and stores
// the content again).
package blobstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"time"
)

// DefaultMaxSize is the largest blob a store accepts unless configured
// otherwise.
const DefaultMaxSize = 64 << 20

// DefaultContentType is recorded when Put is given no usable content type.
const DefaultContentType = "application/octet-stream"

// Errors returned (possibly wrapped) by every Store.
var (
	// ErrNotFound: no blob has this key.
	ErrNotFound = errors.New("blob not found")
	// ErrInvalidKey: the key is not 64 lowercase hex digits.
	ErrInvalidKey = errors.New("invalid blob key")
	// ErrTooLarge: the content is larger than the store's maximum size.
	ErrTooLarge = errors.New("blob too large")
)

// Blob describes stored content.
type Blob struct {
	// Key is the lowercase hex SHA-256 of the content.
	Key string
	// Size is the content length in bytes.
	Size int64
	// ContentType is the media type given when the content was first stored.
	ContentType string
	// CreatedAt is when the content was first stored.
	CreatedAt time.Time
	// PutAt is when the content was last put (by any Put, also one that
	// stored nothing new), on the store's clock (Purger.Now). Purge
	// compares it.
	PutAt time.Time
}

// Reader reads a blob's content, with random access for range requests.
type Reader interface {
	io.Reader
	io.ReaderAt
	io.Seeker
	io.Closer
}

// Store keeps content-addressed blobs. Implementations are safe for
// concurrent use.
type Store interface {
	// Put stores the content read from r (up to the store's maximum size)
	// and returns its description. Storing content that is already there
	// stores nothing new and returns the existing blob, whose content type
	// is the one first recorded.
	Put(ctx context.Context, contentType string, r io.Reader) (Blob, error)
	// Stat describes the blob with the given key, or returns ErrNotFound.
	Stat(ctx context.Context, key string) (Blob, error)
	// Open returns a reader of the blob's content; the caller closes it.
	// The reader may keep using ctx, so use it only while ctx is live.
	Open(ctx context.Context, key string) (Reader, Blob, error)
	// Delete removes the blob. Deleting a missing blob is not an error.
	Delete(ctx context.Context, key string) error
}

// Purger removes blobs that no one has put for a while. Every Store of
// this module is also a Purger (blobtest.Exercise checks both).
type Purger interface {
	// Now reads the clock that Put records PutAt with; compute the
	// putBefore of Keys and Purge from it, not from the local clock.
	Now(ctx context.Context) (time.Time, error)
	// Keys returns up to limit blobs whose last Put is before putBefore
	// and whose key sorts after after (in byte order; "" starts from the
	// first), in key order: page through them by passing the last key
	// returned. A blob put again meanwhile may still be listed: Purge
	// decides.
	Keys(ctx context.Context, putBefore time.Time, after string, limit int) ([]Blob, error)
	// Purge removes the blob with key if and only if its last Put is
	// before putBefore, and reports whether it did. It is atomic with
	// respect to Put: a Put of the same content that returns before Purge
	// decides is seen (its PutAt is not before putBefore, so the blob
	// stays), and one that returns after it stores the content again.
	// Hence, once a Put returned a blob whose PutAt is not before
	// putBefore, no Purge with that putBefore removes it. A missing blob
	// is not purged and is not an error.
	Purge(ctx context.Context, key string, putBefore time.Time) (bool, error)
}

// ValidKey reports whether key is 64 lowercase hex digits.
func ValidKey(key string) bool {
	if len(key) != sha256.Size*2 {
		return false
	}
	for i := 0; i < len(key); i++ {
		if c := key[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// CheckKey returns an error wrapping ErrInvalidKey if key is not valid.
func CheckKey(key string) error {
	if ValidKey(key) {
		return nil
	}
	if len(key) > 80 {
		key = key[:80] + "..."
	}
	return fmt.Errorf("%w: %q", ErrInvalidKey, key)
}

// KeyOf returns the key of the given content.
func KeyOf(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// NormalizeContentType returns a canonical form of a media type, or
// DefaultContentType when it is empty or malformed.
func NormalizeContentType(ct string) string {
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return DefaultContentType
	}
	return mime.FormatMediaType(mt, params)
}

// ReadAll reads r up to max bytes and returns an error wrapping ErrTooLarge
// if there is more. max <= 0 means DefaultMaxSize.
func ReadAll(r io.Reader, max int64) ([]byte, error) {
	if max <= 0 {
		max = DefaultMaxSize
	}
	data, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return nil, fmt.Errorf("read blob content: %w", err)
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, max)
	}
	return data, nil
}
