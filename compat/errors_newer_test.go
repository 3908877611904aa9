package compat

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/imageservice/imageservice/commands"
	"github.com/imageservice/imageservice/images"
)

// An image that holds events of a newer build (a rolling deploy is under
// way) is answered 503 with Retry-After, not as an internal error.
func TestFailNewerEventsIsUnavailable(t *testing.T) {
	a := &API{cfg: Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}}
	rec := httptest.NewRecorder()
	err := fmt.Errorf("load image x: %w: %w", commands.ErrNewerEvents, images.ErrUnknownEventType)
	a.fail(rec, httptest.NewRequest(http.MethodDelete, "/images/x", nil), err)
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" || !strings.Contains(rec.Body.String(), CodeServiceUnavailable) {
		t.Errorf("answered %d %v %s, want 503 with Retry-After and %s", rec.Code, rec.Header(), rec.Body, CodeServiceUnavailable)
	}
}
