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
	"time"

	"golang.org/x/image/draw"
	"golang.org/x/sync/singleflight"

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
	group     singleflight.Group
	slots     chan struct{}
	log       *slog.Logger
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
		slots: make(chan struct{}, opts.Concurrency), log: opts.Logger,
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
// time, stores it and returns its key.
func (h *Handler) thumbnail(ctx context.Context, src source) (string, error) {
	name := src.key + "/" + strconv.Itoa(src.width)
	ch := h.group.DoChan(name, func() (any, error) {
		// Made for every waiter: one leaving must not cancel the others.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), makeTimeout)
		defer cancel()
		key, err := h.make(ctx, src)
		if err == nil {
			h.cache.add(src, key)
		}
		return key, err
	})
	select {
	case <-ctx.Done():
		return "", ctx.Err()
	case res := <-ch:
		if res.Err != nil {
			return "", res.Err
		}
		return res.Val.(string), nil
	}
}

// make decodes the original, scales it down, encodes it and stores it.
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
	data, contentType, err := encode(Scale(img, src.width))
	if err != nil {
		return "", err
	}
	blob, err := h.store.Put(ctx, contentType, bytes.NewReader(data))
	if err != nil {
		return "", fmt.Errorf("store thumbnail of %s: %w", src.key, err)
	}
	return blob.Key, nil
}

// decode reads and decodes the original blob.
func (h *Handler) decode(ctx context.Context, key string) (image.Image, error) {
	rd, _, err := h.store.Open(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("open original %s: %w", key, err)
	}
	defer rd.Close()
	img, _, err := imagefile.Decode(rd, h.limits)
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
