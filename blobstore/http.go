package blobstore

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
)

// Withdrawn reports whether the blob with key must no longer be served,
// though it may still be stored (imageservice withdraws a blob once every
// image that used it is deleted, and the blob sweeper of package blobgc
// deletes its bytes after the retention period).
type Withdrawn func(ctx context.Context, key string) (bool, error)

// HandlerOptions tune Handler.
type HandlerOptions struct {
	// Withdrawn, when set, is asked about every blob before it is served:
	// a withdrawn blob is answered as an unknown key is, and an error 500.
	Withdrawn Withdrawn
}

// Handler serves blobs by key: GET and HEAD /<key> (mount it under a prefix
// with http.StripPrefix). Responses carry the stored content type, an ETag of
// the key, immutable caching and nosniff; range requests and If-None-Match
// are handled by http.ServeContent. A malformed key is 400, an unknown or
// withdrawn one 404, both with a short JSON error.
func Handler(store Store, opts HandlerOptions) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			WriteError(w, http.StatusMethodNotAllowed, "method not allowed")
			return
		}
		key := strings.TrimPrefix(r.URL.Path, "/")
		if !ValidKey(key) {
			WriteError(w, http.StatusBadRequest, "malformed blob key")
			return
		}
		if opts.Withdrawn != nil {
			gone, err := opts.Withdrawn(r.Context(), key)
			switch {
			case err != nil:
				slog.ErrorContext(r.Context(), "serve blob", "key", key, "err", err)
				WriteError(w, http.StatusInternalServerError, "internal error")
				return
			case gone:
				WriteError(w, http.StatusNotFound, "blob not found")
				return
			}
		}
		rd, blob, err := store.Open(r.Context(), key)
		switch {
		case errors.Is(err, ErrNotFound):
			WriteError(w, http.StatusNotFound, "blob not found")
			return
		case err != nil:
			slog.ErrorContext(r.Context(), "serve blob", "key", key, "err", err)
			WriteError(w, http.StatusInternalServerError, "internal error")
			return
		}
		defer rd.Close()
		Serve(w, r, rd, blob)
	})
}

// MaxRanges is the most ranges a request may ask for; one that asks for
// more gets the whole blob.
const MaxRanges = 16

// Serve answers r with a blob read from a store: its stored content type,
// an ETag of its key, immutable caching (a key names its content), nosniff
// and a sandboxing Content-Security-Policy; ranges and conditional requests
// are handled by http.ServeContent.
func Serve(w http.ResponseWriter, r *http.Request, rd Reader, blob Blob) {
	ServeTagged(w, r, rd, blob, blob.Key)
}

// ServeTagged is Serve with tag as the entity tag instead of the key, for
// content served under another name (a thumbnail, by its original's key)
// whose own key is not to be handed out.
func ServeTagged(w http.ResponseWriter, r *http.Request, rd Reader, blob Blob, tag string) {
	if strings.Count(r.Header.Get("Range"), ",") >= MaxRanges {
		// Each range may cost a read of its own from the store: a request
		// for many is answered with the whole blob, as RFC 9110 allows.
		r.Header.Del("Range")
	}
	h := w.Header()
	h.Set("Content-Type", blob.ContentType)
	h.Set("ETag", `"`+tag+`"`)
	h.Set("Cache-Control", "public, max-age=31536000, immutable")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'; sandbox")
	http.ServeContent(w, r, "", blob.CreatedAt, rd)
}

// WriteError answers status with the JSON {"error": msg}, not to be cached.
func WriteError(w http.ResponseWriter, status int, msg string) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}
