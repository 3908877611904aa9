package thumbs_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	_ "image/jpeg"
	"image/png"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imageservice/imageservice/blobstore"
	blobfs "github.com/imageservice/imageservice/blobstore/fs"
	"github.com/imageservice/imageservice/internal/testwait"
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

// gatedStore holds each Open of one blob (an original), once opened,
// until it is released, as a slow store would, and hands over the context
// of that Open: the context of the thumbnail's making. With ctxReads, the
// reader it returns ends with that context, as the Postgres store's does;
// without, it reads on, as a file does.
type gatedStore struct {
	blobstore.Store
	mu       sync.Mutex
	key      string
	ctxReads bool
	opened   chan context.Context
	release  chan struct{}
}

// ctxReader fails its reads once ctx has ended.
type ctxReader struct {
	blobstore.Reader
	ctx context.Context
}

func (r ctxReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.Reader.Read(p)
}

// hold makes the Opens of key wait for release, their readers ending
// with their context when ctxReads.
func (s *gatedStore) hold(key string, ctxReads bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.key, s.ctxReads = key, ctxReads
	s.opened, s.release = make(chan context.Context, 8), make(chan struct{})
}

// open lets the Opens held, and those to come, go on.
func (s *gatedStore) open() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.key != "" {
		close(s.release)
		s.key = ""
	}
}

func (s *gatedStore) Open(ctx context.Context, key string) (blobstore.Reader, blobstore.Blob, error) {
	s.mu.Lock()
	held, ctxReads := key == s.key, s.ctxReads
	opened, release := s.opened, s.release
	s.mu.Unlock()
	rd, b, err := s.Store.Open(ctx, key)
	if !held || err != nil {
		return rd, b, err
	}
	opened <- ctx
	<-release
	if ctxReads {
		rd = ctxReader{Reader: rd, ctx: ctx}
	}
	return rd, b, nil
}

type fixture struct {
	store *countingStore
	gate  *gatedStore
	url   string
	// waiters is the number of requests waiting for the last flight
	// (thumbnail in the making) that one joined or left, made the errors
	// the flights' work ended with.
	waiters atomic.Int64
	made    chan error
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	fs, err := blobfs.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	store := &countingStore{Store: fs}
	f := &fixture{store: store, gate: &gatedStore{Store: store}, made: make(chan error, 64)}
	h := thumbs.New(f.gate, thumbs.Options{})
	h.SetHooks(func(n int) { f.waiters.Store(int64(n)) }, func(err error) {
		select {
		case f.made <- err:
		default:
		}
	})
	mux := http.NewServeMux()
	mux.Handle("/thumbs/", http.StripPrefix("/thumbs", h))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	t.Cleanup(f.gate.open) // first: Close waits for the requests held
	f.url = srv.URL + "/thumbs/"
	return f
}

// waitFor waits until a request has joined or left a flight that then
// had n requests waiting.
func (f *fixture) waitFor(t *testing.T, n int64) {
	t.Helper()
	testwait.Until(t, time.Minute, fmt.Sprintf("%d requests waiting for the thumbnail", n), func() bool {
		return f.waiters.Load() == n
	})
}

// nextMade returns the error the next flight's work ends with.
func (f *fixture) nextMade(t *testing.T) error {
	t.Helper()
	select {
	case err := <-f.made:
		return err
	case <-time.After(time.Minute):
		t.Fatal("no thumbnail's making ended in a minute")
		return nil
	}
}

// nextOpened returns the context of the next held Open: the making's.
func (f *fixture) nextOpened(t *testing.T) context.Context {
	t.Helper()
	select {
	case ctx := <-f.gate.opened:
		return ctx
	case <-time.After(time.Minute):
		t.Fatal("the original was not opened in a minute")
		return nil
	}
}

// leaving starts a request of url that its client gives up (closing the
// connection) when cancel is called; done is closed once the client has
// returned.
func leaving(t *testing.T, url string) (cancel func(), done <-chan struct{}) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan struct{})
	go func() {
		defer close(ch)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	return cancel, ch
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

// A thumbnail whose only client goes away mid-work is not finished: its
// making's context is cancelled, the work stops (in the read of the
// original where the store's reader ends with the context, else before
// storing) with that error, not as a blob that is no image, nothing is
// stored, and a later request makes it anew.
func TestThumbnailStopsWhenItsClientLeaves(t *testing.T) {
	for _, ctxReads := range []bool{false, true} {
		t.Run(fmt.Sprintf("reads end with the context: %t", ctxReads), func(t *testing.T) {
			f := newFixture(t)
			key := f.put(t, 300, 200, 255)
			before := f.store.puts.Load()
			f.gate.hold(key, ctxReads)
			leave, left := leaving(t, f.url+key+"?w=160")
			making := f.nextOpened(t)
			f.waitFor(t, 1)
			leave()
			<-left
			f.waitFor(t, 0)
			if err := making.Err(); !errors.Is(err, context.Canceled) {
				t.Fatalf("the making's context once its client left: %v, want cancelled", err)
			}
			f.gate.open() // the work goes on from the original, its context ended
			if err := f.nextMade(t); !errors.Is(err, context.Canceled) || errors.Is(err, thumbs.ErrNotImage) {
				t.Errorf("the making ended with %v, want cancelled (and not ErrNotImage)", err)
			}
			if n := f.store.puts.Load() - before; n != 0 {
				t.Errorf("%d blobs put for a thumbnail nobody waited for, want none", n)
			}
			resp, body := get(t, f.url+key+"?w=160", nil)
			if resp.StatusCode != http.StatusOK || f.store.puts.Load()-before != 1 {
				t.Fatalf("a later request: status %d, %d puts: %s", resp.StatusCode, f.store.puts.Load()-before, body)
			}
			if _, size := decodeSize(t, body); size != image.Pt(160, 106) {
				t.Errorf("thumbnail %v, want 160x106", size)
			}
		})
	}
}

// A thumbnail asked for by two clients at once is made once, and goes on
// when the first client goes away: the second gets it.
func TestThumbnailGoesOnForTheClientsLeft(t *testing.T) {
	f := newFixture(t)
	key := f.put(t, 300, 200, 255)
	before := f.store.puts.Load()
	f.gate.hold(key, true)
	url := f.url + key + "?w=160"
	leave, left := leaving(t, url)
	making := f.nextOpened(t)
	f.waitFor(t, 1)
	type answer struct {
		resp *http.Response
		body []byte
	}
	second := make(chan answer, 1)
	go func() {
		resp, err := http.Get(url)
		if err != nil {
			second <- answer{}
			return
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		second <- answer{resp, body}
	}()
	f.waitFor(t, 2)
	leave()
	<-left
	f.waitFor(t, 1)
	if err := making.Err(); err != nil {
		t.Fatalf("the making's context once the first client left, the second waiting: %v", err)
	}
	f.gate.open()
	if err := f.nextMade(t); err != nil {
		t.Errorf("the making ended with %v", err)
	}
	a := <-second
	if a.resp == nil || a.resp.StatusCode != http.StatusOK {
		t.Fatalf("the second client's answer: %+v: %s", a.resp, a.body)
	}
	if _, size := decodeSize(t, a.body); size != image.Pt(160, 106) {
		t.Errorf("thumbnail %v, want 160x106", size)
	}
	if n := f.store.puts.Load() - before; n != 1 {
		t.Errorf("thumbnail stored %d times, want once", n)
	}
	select {
	case <-f.gate.opened:
		t.Error("the original was opened twice: the second client did not share the first's making")
	default:
	}
}
