package server_test

import (
	"bytes"
	"image"
	_ "image/jpeg"
	"net/http"
	"strings"
	"testing"

	"github.com/imageservice/imageservice/server"
)

// TestWebRoutes checks that the service serves the frontend at / and
// thumbnails of uploaded images at /thumbs/, beside the API.
func TestWebRoutes(t *testing.T) {
	e := start(t, server.Config{})
	img := e.mustUpload("big.png", pngBytes(800, 400))

	status, ct, body := get(t, e.http.URL+"/")
	if status != http.StatusOK || ct != "text/html; charset=utf-8" || !strings.Contains(string(body), "imageservice") {
		t.Fatalf("GET /: %d %q", status, ct)
	}
	if status, ct, _ := get(t, e.http.URL+"/js/main.js"); status != http.StatusOK || ct != "text/javascript; charset=utf-8" {
		t.Errorf("GET /js/main.js: %d %q", status, ct)
	}
	status, ct, body = get(t, e.http.URL+"/thumbs/"+img.Sha256+"?w=160")
	if status != http.StatusOK || ct != "image/jpeg" {
		t.Fatalf("GET thumbnail: %d %q %s", status, ct, body)
	}
	cfg, _, err := image.DecodeConfig(bytes.NewReader(body))
	if err != nil || cfg.Width != 160 || cfg.Height != 80 {
		t.Errorf("thumbnail is %dx%d (%v), want 160x80", cfg.Width, cfg.Height, err)
	}
	if status, _, _ := get(t, e.http.URL+"/thumbs/"+img.Sha256+"?w=161"); status != http.StatusBadRequest {
		t.Errorf("width not allowed: status %d", status)
	}
	if status, _, _ := get(t, e.http.URL+"/healthz"); status != http.StatusOK {
		t.Errorf("GET /healthz: status %d beside the frontend", status)
	}
}
