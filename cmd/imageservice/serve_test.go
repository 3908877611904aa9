package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imageservice/imageservice/internal/pgtest"
	"github.com/imageservice/imageservice/internal/testlog"
)

// startServe runs "imageservice serve" in-process with the environment
// set, and returns its base URL and a function that stops it and returns
// the exit code.
func startServe(t *testing.T, env map[string]string) (string, func() int) {
	t.Helper()
	base, stop, logs := tryServe(t, env)
	if stop == nil {
		t.Fatalf("serve did not start: %s", logs)
	}
	return base, stop
}

// tryServe is startServe that reports a failed start (stop is nil) with
// the service's log instead of failing the test.
func tryServe(t *testing.T, env map[string]string) (string, func() int, string) {
	t.Helper()
	base, stop, logs, err := serveInProcess(t, env)
	if err != nil {
		return "", nil, fmt.Sprintf("%v: %s", err, logs.String())
	}
	return base, stop, ""
}

// serveInProcess runs "imageservice serve" in-process with the environment set
// and returns its base URL, a function that stops it (once; later calls
// return the same exit code) and its log. The service is stopped when the
// test ends, if it was not before.
func serveInProcess(t *testing.T, env map[string]string) (string, func() int, *testlog.Buffer, error) {
	t.Helper()
	for k, v := range env {
		t.Setenv(k, v)
	}
	t.Setenv("HTTP_ADDR", "127.0.0.1:0")
	ctx, cancel := context.WithCancel(context.Background())
	out, w := io.Pipe()
	code := make(chan int, 1)
	logs := new(testlog.Buffer)
	go func() { code <- run(ctx, []string{"serve"}, w, logs); w.Close() }()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		cancel()
		return "", nil, logs, fmt.Errorf("exit %d: %w", <-code, err)
	}
	go io.Copy(io.Discard, out)
	base := strings.Fields(line[strings.Index(line, "http://"):])[0]
	stop := sync.OnceValue(func() int { cancel(); return <-code })
	t.Cleanup(func() { stop() })
	return base, stop, logs, nil
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func TestServeHealthAndReadiness(t *testing.T) {
	dbURL, _ := pgtest.URL(t)
	base, stop := startServe(t, map[string]string{"DATABASE_URL": dbURL})
	if code, body := get(t, base+"/healthz"); code != 200 {
		t.Fatalf("/healthz = %d %s", code, body)
	}
	if code, body := get(t, base+"/readyz"); code != 200 || !strings.Contains(body, "ready") {
		t.Fatalf("/readyz = %d %s", code, body)
	}
	done := make(chan int, 1)
	go func() { done <- stop() }()
	select {
	case c := <-done:
		if c != 0 {
			t.Fatalf("serve exited with %d after a clean stop", c)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop")
	}
}

func TestServeNotReadyWhenNotMigrated(t *testing.T) {
	dbURL, _ := pgtest.URL(t)
	base, stop := startServe(t, map[string]string{"DATABASE_URL": dbURL, "MIGRATE": "false"})
	defer stop()
	if code, body := get(t, base+"/readyz"); code != 503 || !strings.Contains(body, "not migrated") {
		t.Fatalf("/readyz = %d %s, want 503 not migrated", code, body)
	}
}

func TestServeRefusesBadDatabaseURL(t *testing.T) {
	t.Setenv("DATABASE_URL", "postgres://user:s3cret@[bad")
	var stderr strings.Builder
	if code := run(context.Background(), []string{"serve"}, io.Discard, &stderr); code == 0 {
		t.Fatal("serve started with a malformed DATABASE_URL")
	}
	if strings.Contains(stderr.String(), "s3cret") {
		t.Fatalf("the password reached the log: %s", stderr.String())
	}
	if !strings.Contains(stderr.String(), "DATABASE_URL") {
		t.Fatalf("the error does not name the variable: %s", stderr.String())
	}
}

func TestComposedDatabaseURL(t *testing.T) {
	t.Setenv("DATABASE_URL", "")
	t.Setenv("POSTGRES_HOST", "db")
	t.Setenv("POSTGRES_USER", "app")
	t.Setenv("POSTGRES_PASSWORD", "p@ss/word")
	t.Setenv("POSTGRES_DB", "images")
	want := "postgres://app:p%40ss%2Fword@db:5432/images"
	if got := databaseURL(); got != want {
		t.Fatalf("databaseURL() = %q, want %q", got, want)
	}
}

func TestHelpListsEverySetting(t *testing.T) {
	var out strings.Builder
	if code := run(context.Background(), []string{"help"}, &out, io.Discard); code != 0 {
		t.Fatalf("help exited %d", code)
	}
	for _, s := range settings {
		if !strings.Contains(out.String(), s.name) {
			t.Errorf("help does not list %s", s.name)
		}
	}
	if code := run(context.Background(), []string{"nonsense"}, io.Discard, io.Discard); code != 2 {
		t.Errorf("unknown command exited %d, want 2", code)
	}
}

func TestMigrateReplayAndEvents(t *testing.T) {
	dbURL, _ := pgtest.URL(t)
	t.Setenv("DATABASE_URL", dbURL)
	var out, errs strings.Builder
	if code := run(context.Background(), []string{"migrate"}, &out, &errs); code != 0 || !strings.Contains(out.String(), "migrated") {
		t.Fatalf("migrate: %d %s %s", code, out.String(), errs.String())
	}
	// No blob sweeper: its marker events would make the log's length
	// depend on whether it swept before the service stopped.
	base, stop := startServe(t, map[string]string{"DATABASE_URL": dbURL, "PROCESSORS": "false", "BLOB_RETENTION": "off"})
	id := (&replica{base: base}).upload(t, 8, 8)
	stop()

	// The log is read below the oldest transaction still running anywhere
	// in the cluster (DESIGN.md), and other packages' tests hold some open
	// on purpose: until they end, the upload may not be readable yet, and
	// a replay replays what is. Replaying again is harmless.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		out.Reset()
		errs.Reset()
		code := run(context.Background(), []string{"replay"}, &out, &errs)
		if code == 0 && strings.Contains(errs.String(), "1 events replayed") {
			break
		}
		if code != 0 || !strings.Contains(errs.String(), "0 events replayed") || time.Now().After(deadline) {
			t.Fatalf("replay: %d %q %q", code, out.String(), errs.String())
		}
	}
	out.Reset()
	if code := run(context.Background(), []string{"events", "--image", id}, &out, &errs); code != 0 {
		t.Fatalf("events: %d %s", code, errs.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], `"type":"ImageUploaded"`) || !strings.Contains(lines[0], id) {
		t.Fatalf("events printed %q", out.String())
	}
	if code := run(context.Background(), []string{"events", "--image", "nope"}, io.Discard, io.Discard); code == 0 {
		t.Fatal("events accepted a malformed image id")
	}
}

// The service's JSON log lines give durations in Go's notation, which a
// reader can take in at a glance, not as counts of nanoseconds.
func TestLogDurations(t *testing.T) {
	var out bytes.Buffer
	newLogger(&out).Warn("retrying", "retry_in", 1500*time.Millisecond)
	if !strings.Contains(out.String(), `"retry_in":"1.5s"`) {
		t.Fatalf("log line %s, want retry_in 1.5s", out.String())
	}
}

// A service that cannot start says why in a JSON line, as it logs.
func TestServeFailureIsAJSONLine(t *testing.T) {
	t.Setenv("WRITE_RATE", "lots")
	code, _, stderr := runCLI("serve")
	var line struct{ Level, Msg, Err string }
	if err := json.Unmarshal([]byte(stderr), &line); err != nil || code != 1 || line.Level != "ERROR" || !strings.Contains(line.Err, "WRITE_RATE") {
		t.Errorf("exit %d, stderr %q (%v); want 1 and a JSON error line naming WRITE_RATE", code, stderr, err)
	}
}
