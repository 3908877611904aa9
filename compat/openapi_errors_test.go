package compat_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/imageservice/imageservice/auth"
	"github.com/imageservice/imageservice/compat"
	"github.com/imageservice/imageservice/images"
	"github.com/imageservice/imageservice/internal/pgtest"
	"github.com/imageservice/imageservice/server"
)

// TestMain sends every request of the package's tests through documented,
// and fails the run when an error answer of a documented operation is not
// as the OpenAPI document describes it.
func TestMain(m *testing.M) {
	http.DefaultClient.Transport = documented
	code := m.Run()
	if problems := documented.report(); len(problems) > 0 {
		fmt.Fprintf(os.Stderr, "FAIL: %d error answers are not as compat/openapi.yaml describes them:\n\t%s\n",
			len(problems), strings.Join(problems, "\n\t"))
		code = max(code, 1)
	}
	os.Exit(code)
}

// documented checks every error answer (4xx, 5xx) the tests get from an
// operation of the OpenAPI document against it (see spec.checkError), on
// the main address and on the old services' own listeners, and keeps how
// each departs from it.
var documented = &errorRecorder{base: http.DefaultTransport, prefixes: map[string]string{}}

// errorRecorder is an http.RoundTripper that checks error answers.
type errorRecorder struct {
	base http.RoundTripper

	mu       sync.Mutex
	prefixes map[string]string // the host of an old service's own listener: its mount prefix
	problems []string
}

// listener has the answers of an old service's own listener (at rawURL,
// mounted at prefix on the main address) checked until the test ends.
func (r *errorRecorder) listener(t testing.TB, rawURL, prefix string) {
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	r.mu.Lock()
	r.prefixes[u.Host] = prefix
	r.mu.Unlock()
	t.Cleanup(func() {
		r.mu.Lock()
		delete(r.prefixes, u.Host)
		r.mu.Unlock()
	})
}

// RoundTrip sends the request and checks its answer if it is an error of
// a documented operation; the body is read and handed on.
func (r *errorRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := r.base.RoundTrip(req)
	if err != nil || resp.StatusCode < 400 {
		return resp, err
	}
	raw, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("read the answer to %s %s: %w", req.Method, req.URL, err)
	}
	resp.Body = io.NopCloser(bytes.NewReader(raw))
	sp, err := loadSpec()
	if err == nil {
		r.mu.Lock()
		path := r.prefixes[req.URL.Host] + req.URL.Path
		r.mu.Unlock()
		if op, ok := sp.match(req.Method, path); ok {
			_, err = sp.checkError(op, resp.StatusCode, resp.Header, raw)
		}
	}
	if err != nil {
		r.mu.Lock()
		r.problems = append(r.problems, fmt.Sprintf("%s %s: %v", req.Method, req.URL, err))
		r.mu.Unlock()
	}
	return resp, nil
}

// report returns the departures seen so far.
func (r *errorRecorder) report() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.problems)
}

// errorDriver sends requests that must fail, checks their answers
// against the document and remembers, per operation, the statuses seen.
type errorDriver struct {
	sp   *spec
	seen map[string]map[string]bool
}

// errorCase is a request to the main address and the error it must get.
type errorCase struct {
	token, method, url string
	body               []byte // a multipart body, when not nil (else none)
	status             int
	code               string
}

// want sends the request and checks that it gets the status and code,
// as the document describes the operation's answer with that status
// (spec.checkError), and with a Retry-After of at least a second where
// the code says to wait (RATE_LIMITED, SERVICE_UNAVAILABLE).
func (d *errorDriver) want(t *testing.T, c errorCase) {
	t.Helper()
	var body io.Reader
	var contentType string
	if c.body != nil {
		body, contentType = multipartBody(file{"file", "upload.png", c.body})
	}
	req, err := http.NewRequest(c.method, c.url, body)
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	op, ok := d.sp.match(c.method, req.URL.Path)
	if !ok {
		t.Fatalf("%s %s is no operation of the document", c.method, req.URL.Path)
	}
	code, err := d.sp.checkError(op, resp.StatusCode, resp.Header, raw)
	if err != nil {
		t.Error(err)
	}
	if resp.StatusCode != c.status || code != c.code {
		t.Errorf("%s %s = %d %s, want %d with code %s", c.method, c.url, resp.StatusCode, raw, c.status, c.code)
		return
	}
	if code == "RATE_LIMITED" || code == compat.CodeServiceUnavailable || code == "UNAVAILABLE" {
		if n, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || n < 1 {
			t.Errorf("%s %s = %d %s with Retry-After %q, want a whole number of seconds", c.method, c.url, resp.StatusCode, code, resp.Header.Get("Retry-After"))
		}
	}
	if d.seen[op.key()] == nil {
		d.seen[op.key()] = map[string]bool{}
	}
	d.seen[op.key()][strconv.Itoa(resp.StatusCode)] = true
}

// quietLogger drops the logs of the 500s the tests cause on purpose.
func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// Every operation of the OpenAPI document, driven over HTTP into each
// error status it documents, answers with the documented body (the shared
// Error schema, a code its description names) and headers; and each of
// those requests gets a status the operation documents. Statuses that no
// request here reaches fail the test: the document lists only what an
// operation can answer.
func TestErrorResponsesAsDocumented(t *testing.T) {
	pgtest.Require(t) // the subtests' servers need it, and the final check needs them
	sp, err := loadSpec()
	if err != nil {
		t.Fatal(err)
	}
	d := &errorDriver{sp: sp, seen: map[string]map[string]bool{}}
	t.Run("refused", func(t *testing.T) { refusedAsDocumented(t, d) })
	t.Run("rate limited", func(t *testing.T) { rateLimitedAsDocumented(t, d) })
	t.Run("failing", func(t *testing.T) { failingAsDocumented(t, d) })
	for _, op := range sp.ops {
		for _, status := range op.errorStatuses() {
			if !d.seen[op.key()][status] {
				t.Errorf("%s documents %s, which no request here got", op.key(), status)
			}
		}
	}
}

// unknownUUID is an image that does not exist.
const unknownUUID = "0190f0a2-7c4e-7a3b-8c2d-1e2f3a4b5c6d"

// refusedAsDocumented drives every operation into the 4xx statuses a
// client's request causes, and the 503 of an image that holds an event of
// a newer build, with private reads and keys of each scope.
func refusedAsDocumented(t *testing.T, d *errorDriver) {
	e := start(t, server.Config{NoProcessors: true, MaxUploadBytes: 64 << 10, PrivateReads: true, Logger: quietLogger()})
	up, di := e.main+compat.UploadPrefix, e.main+compat.DitherPrefix
	writer := createKey(t, e, "writer", auth.ScopeRead, auth.ScopeWrite)
	reader := createKey(t, e, "reader", auth.ScopeRead)
	writeOnly := createKey(t, e, "write-only", auth.ScopeWrite)
	const bogus = "isk_bogus_key"
	img := uploadAs(t, writer, up).UUID
	deleted := uploadAs(t, writer, up).UUID
	if code, raw := callAs(t, writer, "DELETE", up+"/images/"+deleted, nil, "", nil); code != http.StatusOK {
		t.Fatalf("delete = %d %s", code, raw)
	}
	newer := uploadAs(t, writer, up).UUID
	e.appendToUpload(newer, images.ImageDeletedVersion+1, `{}`)
	png := pngBytes(8, 8)
	for _, c := range []errorCase{
		{bogus, "GET", e.main + compat.OpenAPIPath, nil, 401, "UNAUTHENTICATED"},
		{bogus, "GET", up + "/health", nil, 401, "UNAUTHENTICATED"},
		{bogus, "GET", di + "/health", nil, 401, "UNAUTHENTICATED"},

		{"", "GET", up + "/images", nil, 401, "UNAUTHENTICATED"},
		{writeOnly, "GET", up + "/images", nil, 403, "FORBIDDEN"},

		{writer, "POST", up + "/images", []byte("just some text"), 415, "UNSUPPORTED_FORMAT"},
		{writer, "POST", up + "/images", append(png[:40:40], bytes.Repeat([]byte{1}, 200)...), 400, "CORRUPT_IMAGE"},
		{writer, "POST", up + "/images", append(png[:8:8], make([]byte, 100<<10)...), 413, "FILE_TOO_LARGE"},
		{"", "POST", up + "/images", png, 401, "UNAUTHENTICATED"},
		{reader, "POST", up + "/images", png, 403, "FORBIDDEN"},

		{writer, "GET", up + "/images/not-a-uuid", nil, 400, "INVALID_INPUT"},
		{"", "GET", up + "/images/" + img, nil, 401, "UNAUTHENTICATED"},
		{writeOnly, "GET", up + "/images/" + img, nil, 403, "FORBIDDEN"},
		{reader, "GET", up + "/images/" + img, nil, 404, "NOT_FOUND"}, // another key's
		{writer, "GET", up + "/images/" + deleted, nil, 404, "IMAGE_DELETED"},
		{writer, "GET", up + "/images/" + newer, nil, 503, compat.CodeServiceUnavailable},

		{writer, "DELETE", up + "/images/12", nil, 400, "INVALID_INPUT"},
		{"", "DELETE", up + "/images/" + img, nil, 401, "UNAUTHENTICATED"},
		{reader, "DELETE", up + "/images/" + img, nil, 403, "FORBIDDEN"},
		{writer, "DELETE", up + "/images/" + unknownUUID, nil, 404, "NOT_FOUND"},
		{writer, "DELETE", up + "/images/" + deleted, nil, 404, "NOT_FOUND"},
		{writer, "DELETE", up + "/images/" + newer, nil, 503, compat.CodeServiceUnavailable},

		{"", "GET", di + "/images", nil, 401, "UNAUTHENTICATED"},
		{writeOnly, "GET", di + "/images", nil, 403, "FORBIDDEN"},

		{writer, "GET", di + "/images/xyz", nil, 400, "INVALID_INPUT"},
		{"", "GET", di + "/images/" + img, nil, 401, "UNAUTHENTICATED"},
		{writeOnly, "GET", di + "/images/" + img, nil, 403, "FORBIDDEN"},
		{writer, "GET", di + "/images/" + unknownUUID, nil, 404, "NOT_FOUND"},
		{writer, "GET", di + "/images/" + img, nil, 404, compat.CodeNoDither},
		{writer, "GET", di + "/images/" + newer, nil, 503, compat.CodeServiceUnavailable},

		{bogus, "DELETE", di + "/images/" + img, nil, 401, "UNAUTHENTICATED"},
		{writer, "DELETE", di + "/images/" + img, nil, 405, compat.CodeDitherDeleteNotAllowed},

		{writer, "POST", di + "/images/" + img + "/257", nil, 400, "INVALID_LEVELS"},
		{writer, "POST", di + "/images/xyz/4", nil, 400, "INVALID_INPUT"},
		{"", "POST", di + "/images/" + img + "/4", nil, 401, "UNAUTHENTICATED"},
		{reader, "POST", di + "/images/" + img + "/4", nil, 403, "FORBIDDEN"},
		{writer, "POST", di + "/images/" + unknownUUID + "/4", nil, 404, "NOT_FOUND"},
		{writer, "POST", di + "/images/" + newer + "/4", nil, 503, compat.CodeServiceUnavailable},
	} {
		d.want(t, c)
	}
}

// rateLimitedAsDocumented drives every write past a tiny write rate: one
// write per client, after which each is refused before its key is read.
func rateLimitedAsDocumented(t *testing.T, d *errorDriver) {
	e := start(t, server.Config{NoProcessors: true, WriteRate: 0.001, WriteBurst: 1, Logger: quietLogger()})
	up, di := e.main+compat.UploadPrefix, e.main+compat.DitherPrefix
	const client = "isk_rate_limited" // unknown: its one write is refused too
	png := pngBytes(8, 8)
	for _, c := range []errorCase{
		{client, "POST", up + "/images", png, 401, "UNAUTHENTICATED"},
		{client, "POST", up + "/images", png, 429, "RATE_LIMITED"},
		{client, "DELETE", up + "/images/" + unknownUUID, nil, 429, "RATE_LIMITED"},
		{client, "DELETE", di + "/images/" + unknownUUID, nil, 429, "RATE_LIMITED"},
		{client, "POST", di + "/images/" + unknownUUID + "/4", nil, 429, "RATE_LIMITED"},
	} {
		d.want(t, c)
	}
}

// failingAsDocumented drives every operation into the statuses of the
// service's own failures: 500 when a read or write fails (an image whose
// log holds an event that does not decode, a read model gone, appends
// refused by a trigger), then 503 UNAVAILABLE when API keys cannot be
// read (the event log gone).
func failingAsDocumented(t *testing.T, d *errorDriver) {
	e := start(t, server.Config{NoProcessors: true, Logger: quietLogger()})
	up, di := e.main+compat.UploadPrefix, e.main+compat.DitherPrefix
	broken := uploadPNG(t, up).UUID
	e.appendToUpload(broken, images.ImageDeletedVersion, `{"deleted_at": "not a time"}`)
	e.exec(`ALTER TABLE image_view RENAME TO image_view_gone`)
	e.exec(`CREATE FUNCTION refuse_appends() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'appends refused by the test'; END $$`)
	e.exec(`CREATE TRIGGER refuse_appends BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION refuse_appends()`)
	png := pngBytes(8, 8)
	cases := []errorCase{
		{"", "GET", up + "/images", nil, 500, compat.CodeInternal},
		{"", "POST", up + "/images", png, 500, compat.CodeInternal},
		{"", "GET", up + "/images/" + broken, nil, 500, compat.CodeInternal},
		{"", "DELETE", up + "/images/" + broken, nil, 500, compat.CodeInternal},
		{"", "GET", di + "/images", nil, 500, compat.CodeInternal},
		{"", "GET", di + "/images/" + broken, nil, 500, compat.CodeInternal},
		{"", "POST", di + "/images/" + broken + "/4", nil, 500, compat.CodeInternal},
	}
	for _, c := range cases {
		d.want(t, c)
	}

	// The keys are read again at most a second after they were last read.
	e.exec(`ALTER TABLE events RENAME TO events_gone`)
	eventually(t, "API keys unreadable", func() bool {
		resp, err := http.Get(up + "/health")
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusServiceUnavailable
	})
	for _, c := range append(cases,
		errorCase{"", "GET", e.main + compat.OpenAPIPath, nil, 0, ""},
		errorCase{"", "GET", up + "/health", nil, 0, ""},
		errorCase{"", "GET", di + "/health", nil, 0, ""},
		errorCase{"", "DELETE", di + "/images/" + broken, nil, 0, ""},
	) {
		c.status, c.code = http.StatusServiceUnavailable, "UNAVAILABLE"
		d.want(t, c)
	}
}

// exec runs SQL on the service's schema.
func (e *env) exec(sql string) {
	e.t.Helper()
	if _, err := e.pool.Exec(context.Background(), sql); err != nil {
		e.t.Fatalf("%s: %v", sql, err)
	}
}
