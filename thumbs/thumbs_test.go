package thumbs_test

import (
	"bytes"
	"context"
	"image"
	"image/color"
	_ "image/jpeg"
	"image/png"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imageservice/imageservice/blobstore"
	blobfs "github.com/imageservice/imageservice/blobstore/fs"
	"github.com/imageservice/imageservice/thumbs"
)

// countingStore counts the blobs put into a store.
type countingStore struct {
	blobstore.Store
	puts atomic.Int64
}

func (s *countingStore) Put(ctx context.Context, ct string, r io.Reader) (blobstore.Blob, error) {
	s.puts.Add(1)
	return s.Store.Put(ctx, ct, r)
}

type fixture struct {
	store *countingStore
	url   string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	fs, err := blobfs.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	store := &countingStore{Store: fs}
	mux := http.NewServeMux()
	mux.Handle("/thumbs/", http.StripPrefix("/thumbs", thumbs.New(store, thumbs.Options{})))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &fixture{store: store, url: srv.URL + "/thumbs/"}
}

// put stores a w x h PNG (with alpha when alpha < 255) and returns its key.
func (f *fixture) put(t *testing.T, w, h int, alpha uint8) string {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.NRGBA{uint8(x), uint8(y), 128, alpha})
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	b, err := f.store.Put(context.Background(), "image/png", &buf)
	if err != nil {
		t.Fatal(err)
	}
	return b.Key
}

func get(t *testing.T, url string, header map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

func decodeSize(t *testing.T, body []byte) (string, image.Point) {
	t.Helper()
	cfg, format, err := image.DecodeConfig(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("thumbnail does not decode: %v", err)
	}
	return format, image.Pt(cfg.Width, cfg.Height)
}

func TestThumbnailSizeAndHeaders(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name        string
		w, h, width int
		alpha       uint8
		format      string
		want        image.Point
	}{
		{"downscaled", 400, 200, 160, 255, "jpeg", image.Pt(160, 80)},
		{"640 wide", 1000, 500, 640, 255, "jpeg", image.Pt(640, 320)},
		{"never upscaled", 100, 50, 320, 255, "jpeg", image.Pt(100, 50)},
		{"transparency kept as png", 320, 320, 160, 100, "png", image.Pt(160, 160)},
		{"tall capped at 4:1", 50, 2000, 160, 255, "jpeg", image.Pt(16, 640)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			key := f.put(t, tc.w, tc.h, tc.alpha)
			resp, body := get(t, f.url+key+"?w="+itoa(tc.width), nil)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			format, size := decodeSize(t, body)
			if format != tc.format || size != tc.want {
				t.Errorf("got %s %v, want %s %v", format, size, tc.format, tc.want)
			}
			h := resp.Header
			if ct := h.Get("Content-Type"); ct != "image/"+tc.format {
				t.Errorf("Content-Type %q", ct)
			}
			if tag := h.Get("ETag"); len(tag) != 66 || strings.Contains(tag, blobstore.KeyOf(body)) {
				t.Errorf("ETag %q: want a quoted tag that is not the thumbnail's key", tag)
			}
			if cc := h.Get("Cache-Control"); !strings.Contains(cc, "immutable") || !strings.Contains(cc, "max-age=31536000") {
				t.Errorf("Cache-Control %q", cc)
			}
			if h.Get("X-Content-Type-Options") != "nosniff" {
				t.Errorf("X-Content-Type-Options %q", h.Get("X-Content-Type-Options"))
			}
		})
	}
}

func TestThumbnailIsMadeOnceAndRevalidates(t *testing.T) {
	f := newFixture(t)
	key := f.put(t, 300, 300, 255)
	before := f.store.puts.Load()
	resp, first := get(t, f.url+key+"?w=160", nil)
	if resp.StatusCode != http.StatusOK || f.store.puts.Load() != before+1 {
		t.Fatalf("status %d, %d puts", resp.StatusCode, f.store.puts.Load()-before)
	}
	for range 3 {
		_, again := get(t, f.url+key+"?w=160", nil)
		if !bytes.Equal(again, first) {
			t.Fatal("a second request answered other bytes")
		}
	}
	if n := f.store.puts.Load() - before; n != 1 {
		t.Errorf("thumbnail stored %d times, want once", n)
	}
	resp, _ = get(t, f.url+key+"?w=160", map[string]string{"If-None-Match": resp.Header.Get("ETag")})
	if resp.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match: status %d, want 304", resp.StatusCode)
	}
}

func TestThumbnailRemadeWhenItsBlobIsGone(t *testing.T) {
	f := newFixture(t)
	key := f.put(t, 300, 300, 255)
	_, body := get(t, f.url+key+"?w=160", nil)
	if err := f.store.Delete(context.Background(), blobstore.KeyOf(body)); err != nil {
		t.Fatal(err)
	}
	resp, again := get(t, f.url+key+"?w=160", nil)
	if resp.StatusCode != http.StatusOK || !bytes.Equal(again, body) {
		t.Fatalf("status %d after the thumbnail blob was deleted", resp.StatusCode)
	}
}

func TestThumbnailErrors(t *testing.T) {
	f := newFixture(t)
	key := f.put(t, 10, 10, 255)
	text, err := f.store.Put(context.Background(), "text/plain", strings.NewReader("not an image"))
	if err != nil {
		t.Fatal(err)
	}
	unknown := strings.Repeat("ab", 32)
	tests := []struct {
		name, path string
		status     int
	}{
		{"unknown key", unknown + "?w=160", http.StatusNotFound},
		{"malformed key", "xyz?w=160", http.StatusBadRequest},
		{"upper-case key", strings.ToUpper(key) + "?w=160", http.StatusBadRequest},
		{"width not allowed", key + "?w=200", http.StatusBadRequest},
		{"width missing", key, http.StatusBadRequest},
		{"width not a number", key + "?w=big", http.StatusBadRequest},
		{"not an image", text.Key + "?w=160", http.StatusUnsupportedMediaType},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := get(t, f.url+tc.path, nil)
			if resp.StatusCode != tc.status {
				t.Errorf("status %d, want %d: %s", resp.StatusCode, tc.status, body)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
		})
	}
	resp, err := http.Post(f.url+key+"?w=160", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST: status %d, want 405", resp.StatusCode)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// A thumbnail purged by the blob sweeper (its original's image live, but
// nothing referring to the thumbnail) is made again, though the LRU still
// names its key.
func TestThumbnailRemadeWhenPurged(t *testing.T) {
	f := newFixture(t)
	key := f.put(t, 300, 200, 255)
	_, body := get(t, f.url+key+"?w=160", nil)
	purger := f.store.Store.(blobstore.Purger)
	ctx := context.Background()
	now, err := purger.Now(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := purger.Purge(ctx, blobstore.KeyOf(body), now.Add(time.Hour)); !ok || err != nil {
		t.Fatalf("purge the thumbnail: %t, %v", ok, err)
	}
	before := f.store.puts.Load()
	resp, again := get(t, f.url+key+"?w=160", nil)
	if resp.StatusCode != http.StatusOK || !bytes.Equal(again, body) || f.store.puts.Load() != before+1 {
		t.Fatalf("status %d, same bytes %t, puts %d after the thumbnail was purged", resp.StatusCode, bytes.Equal(again, body), f.store.puts.Load()-before)
	}
	if _, err := f.store.Stat(ctx, blobstore.KeyOf(body)); err != nil {
		t.Fatalf("the thumbnail made again is not stored: %v", err)
	}
}
