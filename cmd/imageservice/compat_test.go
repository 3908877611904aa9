package main

import (
	"context"
	"io"
	"strings"
	"testing"

	"github.com/imageservice/imageservice/internal/pgtest"
	"github.com/imageservice/imageservice/internal/testnet"
)

// With UPLOAD_COMPAT_ADDR and DITHER_COMPAT_ADDR set, the old services
// answer at the root of their own addresses, besides under /compat.
func TestServeCompatListeners(t *testing.T) {
	dbURL, _ := pgtest.URL(t)
	// A free address can be taken by another process before the service
	// listens on it (tests of other packages run at the same time): try
	// again with new ones.
	var up, di, base string
	var stop func() int
	for attempt := 0; stop == nil; attempt++ {
		up, di = testnet.FreeAddr(t), testnet.FreeAddr(t)
		var logs string
		base, stop, logs = tryServe(t, map[string]string{"DATABASE_URL": dbURL, "UPLOAD_COMPAT_ADDR": up, "DITHER_COMPAT_ADDR": di})
		if stop == nil && (attempt == 2 || !strings.Contains(logs, "address already in use")) {
			t.Fatalf("serve did not start: %s", logs)
		}
	}
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
