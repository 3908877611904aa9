package blobstore_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/imageservice/imageservice/blobstore"
	blobfs "github.com/imageservice/imageservice/blobstore/fs"
)

// newStore returns a store holding one blob, "0123456789".
func newStore(t *testing.T) (blobstore.Store, blobstore.Blob) {
	t.Helper()
	s, err := blobfs.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Put(context.Background(), "image/png", strings.NewReader("0123456789"))
	if err != nil {
		t.Fatal(err)
	}
	return s, b
}

func newServer(t *testing.T) (*httptest.Server, blobstore.Blob) {
	t.Helper()
	s, b := newStore(t)
	mux := http.NewServeMux()
	mux.Handle("/blobs/", http.StripPrefix("/blobs", blobstore.Handler(s, blobstore.HandlerOptions{})))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, b
}

func do(t *testing.T, method, url string, header map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
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
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

func TestHandler(t *testing.T) {
	srv, b := newServer(t)
	url := srv.URL + "/blobs/" + b.Key
	tests := []struct {
		name        string
		method, url string
		header      map[string]string
		status      int
		body        string
		contentType string
	}{
		{name: "get", method: "GET", url: url, status: 200, body: "0123456789", contentType: "image/png"},
		{name: "head", method: "HEAD", url: url, status: 200, body: "", contentType: "image/png"},
		{name: "range", method: "GET", url: url, header: map[string]string{"Range": "bytes=2-4"}, status: 206, body: "234", contentType: "image/png"},
		{name: "too many ranges", method: "GET", url: url, header: map[string]string{"Range": "bytes=0-0" + strings.Repeat(",1-1", blobstore.MaxRanges)},
			status: 200, body: "0123456789", contentType: "image/png"},
		{name: "if-none-match", method: "GET", url: url, header: map[string]string{"If-None-Match": `"` + b.Key + `"`}, status: 304},
		{name: "other etag", method: "GET", url: url, header: map[string]string{"If-None-Match": `"x"`}, status: 200, body: "0123456789"},
		{name: "unknown", method: "GET", url: srv.URL + "/blobs/" + blobstore.KeyOf([]byte("nope")), status: 404, contentType: "application/json"},
		{name: "malformed", method: "GET", url: srv.URL + "/blobs/ABC", status: 400, contentType: "application/json"},
		{name: "traversal", method: "GET", url: srv.URL + "/blobs/..%2f..%2fetc%2fpasswd", status: 400, contentType: "application/json"},
		{name: "post", method: "POST", url: url, status: 405, contentType: "application/json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := do(t, tt.method, tt.url, tt.header)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d (body %q)", resp.StatusCode, tt.status, body)
			}
			if tt.body != "" && body != tt.body {
				t.Fatalf("body %q, want %q", body, tt.body)
			}
			if tt.contentType != "" && resp.Header.Get("Content-Type") != tt.contentType {
				t.Fatalf("content type %q", resp.Header.Get("Content-Type"))
			}
			if resp.Header.Get("X-Content-Type-Options") != "nosniff" {
				t.Fatal("missing nosniff")
			}
			if tt.status >= 400 {
				var e struct{ Error string }
				if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error == "" {
					t.Fatalf("error body %q", body)
				}
			}
		})
	}
}

func TestHandlerHeaders(t *testing.T) {
	srv, b := newServer(t)
	resp, _ := do(t, "GET", srv.URL+"/blobs/"+b.Key, nil)
	want := map[string]string{
		"ETag":           `"` + b.Key + `"`,
		"Cache-Control":  "public, max-age=31536000, immutable",
		"Content-Length": "10",
		"Accept-Ranges":  "bytes",
	}
	for k, v := range want {
		if got := resp.Header.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
}

type brokenStore struct{ blobstore.Store }

func (brokenStore) Open(context.Context, string) (blobstore.Reader, blobstore.Blob, error) {
	return nil, blobstore.Blob{}, errors.New("database password is hunter2")
}

func TestHandlerInternalError(t *testing.T) {
	rec := httptest.NewRecorder()
	blobstore.Handler(brokenStore{}, blobstore.HandlerOptions{}).ServeHTTP(rec, httptest.NewRequest("GET", "/"+blobstore.KeyOf(nil), nil))
	if rec.Code != 500 || bytes.Contains(rec.Body.Bytes(), []byte("hunter2")) {
		t.Fatalf("status %d body %q", rec.Code, rec.Body)
	}
}

func TestKeys(t *testing.T) {
	k := blobstore.KeyOf([]byte("abc"))
	if k != "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" || !blobstore.ValidKey(k) {
		t.Fatalf("KeyOf = %s", k)
	}
	for _, bad := range []string{"", k[:63], strings.ToUpper(k), k + "a", strings.Repeat("g", 64)} {
		if blobstore.ValidKey(bad) {
			t.Errorf("ValidKey(%q)", bad)
		}
		if err := blobstore.CheckKey(bad); !errors.Is(err, blobstore.ErrInvalidKey) {
			t.Errorf("CheckKey(%q) = %v", bad, err)
		}
	}
}

func TestNormalizeContentType(t *testing.T) {
	tests := map[string]string{
		"image/png":                 "image/png",
		"IMAGE/PNG":                 "image/png",
		"text/plain; charset=utf-8": "text/plain; charset=utf-8",
		"":                          blobstore.DefaultContentType,
		"garbage;;":                 blobstore.DefaultContentType,
	}
	for in, want := range tests {
		if got := blobstore.NormalizeContentType(in); got != want {
			t.Errorf("NormalizeContentType(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestReadAll(t *testing.T) {
	if _, err := blobstore.ReadAll(bytes.NewReader(make([]byte, 5)), 4); !errors.Is(err, blobstore.ErrTooLarge) {
		t.Fatalf("over limit: %v", err)
	}
	if b, err := blobstore.ReadAll(bytes.NewReader(make([]byte, 4)), 4); err != nil || len(b) != 4 {
		t.Fatalf("at limit: %d, %v", len(b), err)
	}
}

// A withdrawn blob is answered as an unknown one, a failed check 500
// without its error, and the check sees the blob's key.
func TestHandlerWithdrawn(t *testing.T) {
	s, b := newStore(t)
	for _, c := range []struct {
		gone   bool
		err    error
		status int
		body   string
	}{
		{false, nil, http.StatusOK, "0123456789"},
		{true, nil, http.StatusNotFound, `{"error":"blob not found"}`},
		{false, errors.New("database password is hunter2"), http.StatusInternalServerError, `{"error":"internal error"}`},
	} {
		var asked string
		h := blobstore.Handler(s, blobstore.HandlerOptions{Withdrawn: func(_ context.Context, key string) (bool, error) {
			asked = key
			return c.gone, c.err
		}})
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/"+b.Key, nil))
		if rec.Code != c.status || strings.TrimSpace(rec.Body.String()) != c.body || asked != b.Key {
			t.Errorf("withdrawn %t, %v: %d %q (asked about %q)", c.gone, c.err, rec.Code, rec.Body, asked)
		}
	}
}
