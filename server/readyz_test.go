package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imageservice/imageservice/bridge"
	"github.com/imageservice/imageservice/internal/testlog"
	"github.com/imageservice/imageservice/server"
)

// pingSink is a sink whose broker answers a ping with err.
type pingSink struct {
	name string
	err  error
}

func (s pingSink) Name() string                                    { return s.name }
func (s pingSink) Publish(context.Context, []bridge.Message) error { return nil }
func (s pingSink) Close() error                                    { return nil }
func (s pingSink) Ping(context.Context) error                      { return s.err }

// plainSink cannot be pinged.
type plainSink struct{}

func (plainSink) Name() string                                    { return "plain" }
func (plainSink) Publish(context.Context, []bridge.Message) error { return nil }
func (plainSink) Close() error                                    { return nil }

// readiness is the body of /readyz.
type readiness struct {
	Status, Reason string
	Checks         map[string]string
}

func getReadyz(t *testing.T, h http.Handler) (int, readiness) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	var rd readiness
	if err := json.Unmarshal(rec.Body.Bytes(), &rd); err != nil {
		t.Fatalf("/readyz body %q: %v", rec.Body.String(), err)
	}
	return rec.Code, rd
}

// /readyz reports the database, its migrations and every broker that can
// be pinged; a broker that is down leaves the service ready.
func TestReadinessReportsBrokers(t *testing.T) {
	e := start(t, server.Config{Sinks: []bridge.Sink{
		pingSink{name: "up"}, pingSink{name: "down", err: errors.New("connection refused")}, plainSink{},
	}})
	code, rd := getReadyz(t, e.srv.Handler())
	want := map[string]string{"database": "up", "migrations": "up", "up": "up", "down": "down"}
	if code != http.StatusOK || rd.Status != "ready" || len(rd.Checks) != len(want) {
		t.Fatalf("/readyz = %d %+v, want 200 ready with %v", code, rd, want)
	}
	for k, v := range want {
		if rd.Checks[k] != v {
			t.Errorf("check %s = %q, want %q (all: %v)", k, rd.Checks[k], v, rd.Checks)
		}
	}
}

// The embedded default reports its database too.
func TestEmbeddedReadiness(t *testing.T) {
	srv, err := server.NewEmbedded(context.Background(), t.TempDir(), server.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	code, rd := getReadyz(t, srv.Handler())
	if code != http.StatusOK || rd.Status != "ready" || rd.Checks["database"] != "up" || rd.Checks["migrations"] != "up" {
		t.Fatalf("/readyz = %d %+v", code, rd)
	}
}

// The embedded default removes, when it opens its blob store, the
// temporary files that Puts cut short by a crash left, and says so.
func TestEmbeddedRemovesLeftoverTempFiles(t *testing.T) {
	dir := t.TempDir()
	tmp := filepath.Join(dir, server.BlobDir, ".tmp")
	if err := os.MkdirAll(tmp, 0o750); err != nil {
		t.Fatal(err)
	}
	left := filepath.Join(tmp, "put-123456")
	if err := os.WriteFile(left, []byte("half an upload"), 0o600); err != nil {
		t.Fatal(err)
	}
	var logs testlog.Buffer
	srv, err := server.NewEmbedded(context.Background(), dir, server.Config{Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if _, err := os.Stat(left); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("leftover temp file: %v, want it removed", err)
	}
	if !strings.Contains(logs.String(), `"files":1,"bytes":14`) {
		t.Errorf("the removal is not logged:\n%s", logs.String())
	}
}
