package main

import (
	"context"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/imageservice/imageservice/internal/pgtest"
)

// freeAddr returns a local address that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// With UPLOAD_COMPAT_ADDR and DITHER_COMPAT_ADDR set, the old services
// answer at the root of their own addresses, besides under /compat.
func TestServeCompatListeners(t *testing.T) {
	dbURL, _ := pgtest.URL(t)
	up, di := freeAddr(t), freeAddr(t)
	base, stop := startServe(t, map[string]string{"DATABASE_URL": dbURL, "UPLOAD_COMPAT_ADDR": up, "DITHER_COMPAT_ADDR": di})
	defer stop()
	for _, u := range []string{
		base + "/compat/upload/health", base + "/compat/dither/health", base + "/compat/openapi.yaml",
		"http://" + up + "/health", "http://" + di + "/health",
	} {
		if code, body := get(t, u); code != 200 {
			t.Errorf("GET %s = %d %s", u, code, body)
		}
	}
	for _, u := range []string{"http://" + up + "/images", "http://" + di + "/images"} {
		if code, body := get(t, u); code != 200 || strings.TrimSpace(body) != "[]" {
			t.Errorf("GET %s = %d %s, want 200 []", u, code, body)
		}
	}
}

func TestServeRefusesBadCompatAddr(t *testing.T) {
	dbURL, _ := pgtest.URL(t)
	t.Setenv("DATABASE_URL", dbURL)
	t.Setenv("HTTP_ADDR", "127.0.0.1:0")
	t.Setenv("DITHER_COMPAT_ADDR", "127.0.0.1:99999")
	var stderr strings.Builder
	if code := run(context.Background(), []string{"serve"}, io.Discard, &stderr); code == 0 {
		t.Fatal("serve started with a bad DITHER_COMPAT_ADDR")
	}
	if !strings.Contains(stderr.String(), "DITHER_COMPAT_ADDR") {
		t.Fatalf("the error does not name the variable: %s", stderr.String())
	}
}
