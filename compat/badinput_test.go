package compat_test

import (
	"bytes"
	"net/http"
	"strings"
	"testing"

	"github.com/imageservice/imageservice/server"
)

// Bad input gets a 4xx JSON error and appends nothing.
func TestBadInputChangesNothing(t *testing.T) {
	e := start(t, server.Config{MaxUploadBytes: 64 << 10})
	up, di := e.main+"/compat/upload", e.main+"/compat/dither"
	img := uploadPNG(t, up) // no automatic dither in this service
	before := e.eventCount()

	t.Run("uploads", func(t *testing.T) { badUploads(t, up) })
	t.Run("uuids", func(t *testing.T) { badUUIDs(t, up, di) })
	t.Run("channels", func(t *testing.T) {
		for _, c := range []string{"1", "257", "0", "-3", "abc", "2.5"} {
			wantError(t, "POST", di+"/images/"+img.UUID+"/"+c, nil, "", 400, "INVALID_LEVELS")
		}
	})
	t.Run("routes", func(t *testing.T) { badRoutes(t, up, di, img.UUID) })
	t.Run("no dither yet", func(t *testing.T) {
		wantError(t, "GET", di+"/images/"+img.UUID, nil, "", 404, "NO_DITHER")
		var one oldImageOne
		if call(t, "GET", up+"/images/"+img.UUID, nil, "", &one); one.Status != "PENDING" || one.URLDither != "" {
			t.Errorf("an image without dithers is %+v, want PENDING", one)
		}
	})
	if after := e.eventCount(); after != before {
		t.Fatalf("bad input appended %d events", after-before)
	}
}

func badUploads(t *testing.T, up string) {
	post := func(status int, code string, files ...file) {
		t.Helper()
		body, ct := multipartBody(files...)
		wantError(t, "POST", up+"/images", body, ct, status, code)
	}
	png := pngBytes(8, 8)
	post(415, "UNSUPPORTED_FORMAT", file{"file", "photo.png", []byte("just some text, named like an image")})
	post(400, "CORRUPT_IMAGE", file{"file", "photo.png", append(png[:40:40], bytes.Repeat([]byte{1}, 200)...)})
	post(400, "INVALID_INPUT") // no file at all
	post(413, "FILE_TOO_LARGE", file{"file", "big.png", append(png[:8:8], make([]byte, 100<<10)...)})
	post(413, "FILE_TOO_LARGE", file{"a", "a.bin", make([]byte, 600<<10)}, file{"b", "b.bin", make([]byte, 600<<10)})
	wantError(t, "POST", up+"/images", strings.NewReader(`{"file": "x"}`), "application/json", 400, "INVALID_INPUT")
}

func badUUIDs(t *testing.T, up, di string) {
	unknown := "0190f0a2-7c4e-7a3b-8c2d-1e2f3a4b5c6d"
	for _, c := range []struct{ method, url string }{
		{"GET", up + "/images/" + unknown}, {"DELETE", up + "/images/" + unknown},
		{"GET", di + "/images/" + unknown}, {"POST", di + "/images/" + unknown + "/4"},
	} {
		wantError(t, c.method, c.url, nil, "", 404, "NOT_FOUND")
	}
	for _, c := range []struct{ method, url string }{
		{"GET", up + "/images/not-a-uuid"}, {"DELETE", up + "/images/12"},
		{"GET", di + "/images/xyz"}, {"POST", di + "/images/xyz/4"},
	} {
		wantError(t, c.method, c.url, nil, "", 400, "INVALID_INPUT")
	}
}

func badRoutes(t *testing.T, up, di, id string) {
	wantError(t, "DELETE", di+"/images/"+id, nil, "", 405, "DITHER_DELETE_NOT_SUPPORTED")
	if code, _ := call(t, "GET", up+"/images/"+id, nil, "", nil); code != 200 {
		t.Errorf("the image is gone after a refused dither delete: %d", code)
	}
	wantError(t, "GET", up+"/nothing", nil, "", 404, "ROUTE_NOT_FOUND")
	wantError(t, "PUT", up+"/images", nil, "", 405, "METHOD_NOT_ALLOWED")
	req, _ := http.NewRequest("PATCH", di+"/images/"+id, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 405 || resp.Header.Get("Allow") != "GET, HEAD" {
		t.Errorf("PATCH = %d, Allow %q; want 405 with GET, HEAD", resp.StatusCode, resp.Header.Get("Allow"))
	}
}

// The upload takes the first file whose content is an image of an
// accepted format, whatever the names say.
func TestUploadPicksTheImageByContent(t *testing.T) {
	e := start(t, server.Config{})
	body, ct := multipartBody(file{"notes", "photo.png", []byte("plain text")},
		file{"bmp", "old.png", append([]byte("BM"), make([]byte, 64)...)}, file{"other", "picture.txt", pngBytes(16, 16)})
	var img oldImage
	if code, raw := call(t, "POST", e.upload+"/images", body, ct, &img); code != 201 || img.Filename != "picture.txt" {
		t.Fatalf("upload = %d %s, want picture.txt", code, raw)
	}
}
