// Package thumbs serves downscaled copies of image blobs, for galleries
// that must not download full originals.
//
// GET /<sha256>?w=N (mount it under a prefix with http.StripPrefix) answers
// a thumbnail N pixels wide (never wider than the original), N one of
// Widths. A thumbnail is made once: it is stored in the blob store like any
// other content, and an in-memory LRU maps the original and width to the
// thumbnail's key. After a restart the thumbnail is made again, which
// stores nothing new since blobs are keyed by content. Nothing durable
// refers to a thumbnail, so the blob sweeper (package blobgc) purges it
// once it has not been stored for the retention period, even when its
// original's image is live: a thumbnail whose blob is gone is made again.
// Requests for a thumbnail in the making share it; it stops, storing
// nothing, once every client that asked for it has gone.
package thumbs

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/image/draw"

	"github.com/imageservice/imageservice/blobstore"
	"github.com/imageservice/imageservice/imagefile"
)

// Widths are the thumbnail widths a client may ask for.
var Widths = []int{160, 320, 640}

// Defaults of Options.
const (
	// DefaultCacheSize is how many thumbnail keys the LRU remembers.
	DefaultCacheSize = 4096
	// DefaultConcurrency is how many thumbnails are made at once.
	DefaultConcurrency = 2
	// makeTimeout bounds the making of one thumbnail.
	makeTimeout = time.Minute
	// maxAspect caps a thumbnail's height at this many times its width.
	maxAspect = 4
)

// Errors of making a thumbnail, mapped to HTTP statuses by the handler.
var (
	// ErrNotImage means the blob is not an image that can be decoded.
	ErrNotImage = errors.New("blob is not a decodable image")
)

// Options tune a Handler. Zero fields take the defaults.
type Options struct {
	// Limits bound the originals decoded (default: package imagefile's).
	Limits imagefile.Limits
	// CacheSize is how many thumbnail keys are remembered.
	CacheSize int
	// Concurrency is how many thumbnails are made at once.
	Concurrency int
	// Logger receives errors (default slog.Default()).
	Logger *slog.Logger
	// Withdrawn, when set, is asked about every original before its
	// thumbnail is served: the thumbnails of a withdrawn original are
	// answered as those of an unknown key are.
	Withdrawn blobstore.Withdrawn
}

// Handler serves thumbnails of the blobs of a store.
type Handler struct {
	store     blobstore.Store
	withdrawn blobstore.Withdrawn
	limits    imagefile.Limits
	cache     *lru
	slots     chan struct{}
	log       *slog.Logger

	mu      sync.Mutex
	flights map[string]*flight // by original key and width, guarded by mu

	// Test hooks (export_test.go), nil outside tests: waited is told a
	// flight's number of waiting requests each time one joins or leaves,
	// made the error its work ended with.
	waited func(waiters int)
	made   func(err error)
}

// flight is the making of one thumbnail, shared by the requests that ask
// for it while it runs. Its context is its own, not any request's, and is
// cancelled when the last request waiting for it leaves.
type flight struct {
	done    chan struct{} // closed once key and err are set
	key     string
	err     error
	waiters int                // requests waiting, guarded by Handler.mu
	cancel  context.CancelFunc // ends the work
}

// New returns a Handler of the blobs of store.
func New(store blobstore.Store, opts Options) *Handler {
	if opts.CacheSize <= 0 {
		opts.CacheSize = DefaultCacheSize
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = DefaultConcurrency
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Handler{
		store: store, withdrawn: opts.Withdrawn, limits: opts.Limits, cache: newLRU(opts.CacheSize),
		slots: make(chan struct{}, opts.Concurrency), log: opts.Logger, flights: make(map[string]*flight),
	}
}

// ServeHTTP answers GET and HEAD /<sha256>?w=N with the thumbnail, an ETag
// derived from its key (see etag), immutable caching and nosniff. A malformed key or a width not
// in Widths is 400, an unknown or withdrawn key 404, a blob that is no
// image 415.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		blobstore.WriteError(w, http.StatusMethodNotAllowed, "method not allowed")
		return
	}
	src, msg := parse(r)
	if msg != "" {
		blobstore.WriteError(w, http.StatusBadRequest, msg)
		return
	}
	rd, blob, err := h.open(r.Context(), src)
	if err != nil {
		h.fail(w, r, src, err)
		return
	}
	defer rd.Close()
	blobstore.ServeTagged(w, r, rd, blob, etag(blob.Key))
}

// etag is a thumbnail's entity tag: derived from its key but not the key,
// which would fetch the thumbnail from /blobs, past the checks on its
// original (a deleted image's thumbnails must go with it).
func etag(key string) string {
	sum := sha256.Sum256([]byte("thumbnail:" + key))
	return hex.EncodeToString(sum[:])
}

// parse reads the original's key and the width of a request, or returns
// why they are not acceptable.
func parse(r *http.Request) (source, string) {
	key := strings.TrimPrefix(r.URL.Path, "/")
	if !blobstore.ValidKey(key) {
		return source{}, "malformed blob key"
	}
	width, err := strconv.Atoi(r.URL.Query().Get("w"))
	if err != nil || !slices.Contains(Widths, width) {
		return source{}, fmt.Sprintf("w must be one of %v", Widths)
	}
	return source{key: key, width: width}, ""
}

// fail answers the error of making or opening a thumbnail.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, src source, err error) {
	switch {
	case errors.Is(err, blobstore.ErrNotFound):
		blobstore.WriteError(w, http.StatusNotFound, "blob not found")
	case errors.Is(err, ErrNotImage):
		blobstore.WriteError(w, http.StatusUnsupportedMediaType, "blob is not an image")
	case r.Context().Err() != nil:
		blobstore.WriteError(w, http.StatusServiceUnavailable, "request cancelled")
	default:
		h.log.ErrorContext(r.Context(), "serve thumbnail", "key", src.key, "width", src.width, "err", err)
		blobstore.WriteError(w, http.StatusInternalServerError, "internal error")
	}
}

// open returns a reader of the thumbnail of src, making it when it is not
// known or its blob is gone.
func (h *Handler) open(ctx context.Context, src source) (blobstore.Reader, blobstore.Blob, error) {
	if h.withdrawn != nil {
		gone, err := h.withdrawn(ctx, src.key)
		if err != nil {
			return nil, blobstore.Blob{}, fmt.Errorf("check original %s: %w", src.key, err)
		}
		if gone {
			return nil, blobstore.Blob{}, fmt.Errorf("original %s: its images are deleted: %w", src.key, blobstore.ErrNotFound)
		}
	}
	if key, ok := h.cache.get(src); ok {
		rd, blob, err := h.store.Open(ctx, key)
		if !errors.Is(err, blobstore.ErrNotFound) {
			return rd, blob, wrap(err, "open thumbnail")
		}
		h.cache.remove(src)
	}
	key, err := h.thumbnail(ctx, src)
	if err != nil {
		return nil, blobstore.Blob{}, err
	}
	rd, blob, err := h.store.Open(ctx, key)
	return rd, blob, wrap(err, "open thumbnail")
}

// thumbnail makes the thumbnail of src once however many ask at the same
// time, stores it and returns its key. The making goes on while any of
// the requests that asked for it is waiting, and stops when the last one
// leaves (the client went away): nothing is stored then, and a later
// request makes it anew.
func (h *Handler) thumbnail(ctx context.Context, src source) (string, error) {
	name := src.key + "/" + strconv.Itoa(src.width)
	h.mu.Lock()
	f, ok := h.flights[name]
	if !ok {
		// Detached from the request, which may leave before the others.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), makeTimeout)
		f = &flight{done: make(chan struct{}), cancel: cancel}
		h.flights[name] = f
		go h.fly(fctx, name, f, src)
	}
	f.waiters++
	n := f.waiters
	h.mu.Unlock()
	h.hookWaited(n)
	select {
	case <-f.done:
		return f.key, f.err
	case <-ctx.Done():
		h.leave(name, f)
		return "", ctx.Err()
	}
}

// fly makes the thumbnail of a flight and hands its outcome to the
// flight's waiters.
func (h *Handler) fly(ctx context.Context, name string, f *flight, src source) {
	defer f.cancel()
	key, err := h.make(ctx, src)
	if err == nil {
		h.cache.add(src, key)
	}
	h.mu.Lock()
	if h.flights[name] == f {
		delete(h.flights, name)
	}
	f.key, f.err = key, err
	h.mu.Unlock()
	close(f.done)
	if h.made != nil {
		h.made(err)
	}
}

// leave takes a request that stopped waiting off its flight, and cancels
// the flight when it was the last: a request that comes later starts
// another.
func (h *Handler) leave(name string, f *flight) {
	h.mu.Lock()
	f.waiters--
	n := f.waiters
	if n == 0 {
		f.cancel()
		if h.flights[name] == f {
			delete(h.flights, name)
		}
	}
	h.mu.Unlock()
	h.hookWaited(n)
}

// hookWaited tells the test hook, if any, a flight's number of waiters.
func (h *Handler) hookWaited(n int) {
	if h.waited != nil {
		h.waited(n)
	}
}

// make decodes the original, scales it down, encodes it and stores it.
// It stops between these steps once ctx ends, so that a thumbnail nobody
// waits for any more is neither finished nor stored (a thumbnail is
// stored whole or not at all: the store's Put writes it in one piece).
func (h *Handler) make(ctx context.Context, src source) (string, error) {
	select {
	case h.slots <- struct{}{}:
		defer func() { <-h.slots }()
	case <-ctx.Done():
		return "", ctx.Err()
	}
	img, err := h.decode(ctx, src.key)
	if err != nil {
		return "", err
	}
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("thumbnail of %s: stopped before scaling: %w", src.key, err)
	}
	img = Scale(img, src.width)
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("thumbnail of %s: stopped before encoding: %w", src.key, err)
	}
	data, contentType, err := encode(img)
	if err != nil {
		return "", err
	}
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("thumbnail of %s: stopped before storing: %w", src.key, err)
	}
	blob, err := h.store.Put(ctx, contentType, bytes.NewReader(data))
	if err != nil {
		return "", fmt.Errorf("store thumbnail of %s: %w", src.key, err)
	}
	return blob.Key, nil
}

// decode reads and decodes the original blob. A read cut short by ctx
// ending is ctx's error, not ErrNotImage.
func (h *Handler) decode(ctx context.Context, key string) (image.Image, error) {
	rd, _, err := h.store.Open(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("open original %s: %w", key, err)
	}
	defer rd.Close()
	img, _, err := imagefile.Decode(rd, h.limits)
	if err != nil && ctx.Err() != nil {
		// The read stopped (a store's reader may end with ctx), which
		// says nothing of the blob.
		return nil, fmt.Errorf("read original %s: %w", key, ctx.Err())
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrNotImage, key, err)
	}
	return img, nil
}

// Scale returns img scaled down with Catmull-Rom to width pixels wide (or
// its own width when narrower), keeping its aspect ratio, at most
// four times as high as wide.
func Scale(img image.Image, width int) image.Image {
	b := img.Bounds()
	w := min(width, b.Dx())
	h := max(1, int(int64(b.Dy())*int64(w)/int64(b.Dx())))
	if h > maxAspect*width {
		h = maxAspect * width
		w = max(1, int(int64(b.Dx())*int64(h)/int64(b.Dy())))
	}
	dst := image.NewNRGBA(image.Rect(0, 0, w, h))
	draw.CatmullRom.Scale(dst, dst.Bounds(), img, b, draw.Src, nil)
	return dst
}

// encode writes a thumbnail as JPEG when it is opaque and as PNG when it
// has transparency, and returns the bytes and their content type.
func encode(img image.Image) ([]byte, string, error) {
	var buf bytes.Buffer
	if o, ok := img.(interface{ Opaque() bool }); ok && o.Opaque() {
		if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 85}); err != nil {
			return nil, "", fmt.Errorf("encode thumbnail: %w", err)
		}
		return buf.Bytes(), "image/jpeg", nil
	}
	if err := imagefile.EncodePNG(&buf, img); err != nil {
		return nil, "", fmt.Errorf("encode thumbnail: %w", err)
	}
	return buf.Bytes(), "image/png", nil
}

// wrap adds context to a non-nil error.
func wrap(err error, what string) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", what, err)
}
