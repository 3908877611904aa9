package compat_test

import (
	"bytes"
	"context"
	"encoding/json"
	"image"
	"image/color"
	"image/png"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/imageservice/imageservice/compat"
	"github.com/imageservice/imageservice/internal/pgtest"
	"github.com/imageservice/imageservice/internal/testwait"
	"github.com/imageservice/imageservice/server"
)

// env is the whole service on a fresh schema, reached over real HTTP: the
// main server (with /compat/...) and the two old services at the root of
// listeners of their own, as UPLOAD_COMPAT_ADDR and DITHER_COMPAT_ADDR do.
type env struct {
	t                    *testing.T
	pool                 *pgxpool.Pool
	srv                  *server.Server
	main, upload, dither string
}

// start runs the service (projector and dither processor included).
func start(t *testing.T, cfg server.Config) *env {
	t.Helper()
	dbURL, _ := pgtest.URL(t)
	pool, err := pgxpool.New(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if err := server.Migrate(context.Background(), pool); err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(nil)
	cfg.PublicURL = "http://" + ts.Listener.Addr().String()
	srv, err := server.New(pool, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ts.Config.Handler = srv.Handler()
	ts.Start()
	upload, dither := srv.CompatHandlers()
	up, di := httptest.NewServer(upload), httptest.NewServer(dither)
	documented.listener(t, up.URL, compat.UploadPrefix)
	documented.listener(t, di.URL, compat.DitherPrefix)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { srv.Run(ctx); close(done) }()
	t.Cleanup(func() {
		ts.Close()
		up.Close()
		di.Close()
		cancel()
		<-done
		srv.Close()
	})
	return &env{t: t, pool: pool, srv: srv, main: ts.URL, upload: up.URL, dither: di.URL}
}

// eventCount is the number of events in the log.
func (e *env) eventCount() int {
	e.t.Helper()
	var n int
	if err := e.pool.QueryRow(context.Background(), "SELECT count(*) FROM events").Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n
}

// file is one part of a multipart body.
type file struct {
	field, name string
	data        []byte
}

// multipartBody builds a multipart/form-data body with the files (and a
// plain field first, which must be ignored).
func multipartBody(files ...file) (io.Reader, string) {
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	_ = w.WriteField("comment", "not a file")
	for _, f := range files {
		fw, _ := w.CreateFormFile(f.field, f.name)
		_, _ = fw.Write(f.data)
	}
	_ = w.Close()
	return &buf, w.FormDataContentType()
}

// call sends a request and decodes a JSON answer into out (when not nil);
// it returns the status and the raw body.
func call(t *testing.T, method, url string, body io.Reader, contentType string, out any) (int, []byte) {
	t.Helper()
	return callAs(t, "", method, url, body, contentType, out)
}

// callAs is call with an API key ("" for none).
func callAs(t *testing.T, token, method, url string, body io.Reader, contentType string, out any) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("%s %s = %d with Content-Type %q: %s", method, url, resp.StatusCode, ct, raw)
	}
	if out != nil {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(out); err != nil {
			t.Fatalf("%s %s = %d: decode %s: %v", method, url, resp.StatusCode, raw, err)
		}
	}
	return resp.StatusCode, raw
}

// apiError is the body of an error response.
type apiError struct {
	Error struct{ Code, Message string } `json:"error"`
}

// wantError checks that a request is answered with the status and code.
func wantError(t *testing.T, method, url string, body io.Reader, contentType string, status int, code string) {
	t.Helper()
	wantErrorAs(t, "", method, url, body, contentType, status, code)
}

// wantErrorAs is wantError with an API key ("" for none).
func wantErrorAs(t *testing.T, token, method, url string, body io.Reader, contentType string, status int, code string) {
	t.Helper()
	var e apiError
	got, raw := callAs(t, token, method, url, body, contentType, nil)
	_ = json.Unmarshal(raw, &e) // other fields may come along: a 401 or 429 also speaks GraphQL
	if got != status || e.Error.Code != code || e.Error.Message == "" {
		t.Errorf("%s %s = %d %s, want %d with code %s", method, url, got, raw, status, code)
	}
}

// eventually polls cond until it holds, failing the test after a minute.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testwait.Until(t, time.Minute, what, cond)
}

// pngBytes returns a w x h PNG with a colour gradient.
func pngBytes(w, h int) []byte {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.NRGBA{uint8(x * 255 / max(w-1, 1)), uint8(y * 255 / max(h-1, 1)), 128, 255})
		}
	}
	var b bytes.Buffer
	_ = png.Encode(&b, img)
	return b.Bytes()
}

// fetchPNG fetches a URL and checks that it is a PNG of the size.
func fetchPNG(t *testing.T, url string, w, h int) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/png" {
		t.Fatalf("GET %s = %d %s", url, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	img, err := png.Decode(resp.Body)
	if err != nil {
		t.Fatalf("%s is not a PNG: %v", url, err)
	}
	if b := img.Bounds(); b.Dx() != w || b.Dy() != h {
		t.Fatalf("%s is %v, want %dx%d", url, b, w, h)
	}
}
