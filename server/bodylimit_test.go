package server_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/imageservice/imageservice/server"
)

// chunked makes req send its body without a length, as
// Transfer-Encoding: chunked.
func chunked(req *http.Request) *http.Request {
	req.Body = io.NopCloser(struct{ io.Reader }{req.Body})
	req.ContentLength = -1
	req.TransferEncoding = []string{"chunked"}
	req.GetBody = nil
	return req
}

// statusAndBody sends req and returns the response's status, content type
// and body.
func statusAndBody(t *testing.T, req *http.Request) (int, string, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), strings.TrimSpace(string(body))
}

// A body over its cap gets 413 FILE_TOO_LARGE with the same JSON whether
// its length is declared (refused before it is read) or not (a chunked
// body, refused once it runs past the cap), for an upload and for a plain
// JSON request alike, and nothing is appended. A chunked upload within the
// cap is taken as any other.
func TestOversizedBodiesGet413(t *testing.T) {
	e := start(t, server.Config{NoProcessors: true, MaxUploadBytes: 64 << 10})
	const uploadCap, jsonCap = 64<<10 + 1<<20, 1 << 20 // the upload cap plus 1 MiB; other bodies
	tooLarge := func(limit int) string {
		return fmt.Sprintf(`{"errors":[{"message":"the request body is larger than %d bytes","extensions":{"code":"FILE_TOO_LARGE"}}]}`, limit)
	}
	before := e.eventCount()
	big := append(pngBytes(4, 4), make([]byte, uploadCap)...)
	bigJSON := `{"query":"{ __typename }","variables":{"pad":"` + strings.Repeat("x", jsonCap) + `"}}`
	jsonRequest := func() *http.Request {
		req, _ := http.NewRequest(http.MethodPost, e.http.URL+"/query", strings.NewReader(bigJSON))
		req.Header.Set("Content-Type", "application/json")
		return req
	}
	cases := []struct {
		name  string
		req   *http.Request
		limit int
	}{
		{"upload, declared length", e.uploadRequest("big.png", big, nil), uploadCap},
		{"upload, chunked", chunked(e.uploadRequest("big.png", big, nil)), uploadCap},
		{"json, declared length", jsonRequest(), jsonCap},
		{"json, chunked", chunked(jsonRequest()), jsonCap},
	}
	for _, c := range cases {
		status, ct, body := statusAndBody(t, c.req)
		if status != http.StatusRequestEntityTooLarge || ct != "application/json" || body != tooLarge(c.limit) {
			t.Errorf("%s: %d %s %s, want 413 %s", c.name, status, ct, body, tooLarge(c.limit))
		}
	}
	if n := e.eventCount() - before; n != 0 {
		t.Errorf("oversized bodies appended %d events", n)
	}

	small := pngBytes(6, 4)
	var res uploadResult
	r := e.send(chunked(e.uploadRequest("small.png", small, nil)), &res)
	if img := res.UploadImage.Image; len(r.Errors) > 0 || img == nil || img.ByteSize != len(small) || img.Width != 6 {
		t.Errorf("chunked upload within the cap: errors %+v, %+v", r.Errors, res.UploadImage)
	}
	status, _, body := statusAndBody(t, chunked(func() *http.Request {
		req, _ := http.NewRequest(http.MethodPost, e.http.URL+"/query", bytes.NewReader([]byte(`{"query":"{ __typename }"}`)))
		req.Header.Set("Content-Type", "application/json")
		return req
	}()))
	if status != http.StatusOK || body != `{"data":{"__typename":"Query"}}` {
		t.Errorf("chunked query within the cap: %d %s", status, body)
	}
}
