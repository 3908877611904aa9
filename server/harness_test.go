package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/imageservice/imageservice/internal/pgtest"
	"github.com/imageservice/imageservice/internal/testwait"
	"github.com/imageservice/imageservice/server"
)

// env is a running service on a fresh schema, reached over real HTTP.
type env struct {
	t       testing.TB
	pool    *pgxpool.Pool
	srv     *server.Server
	http    *httptest.Server
	queries *atomic.Int64 // SQL statements run by the service's pool
	token   string        // the API key requests carry, if any
}

// as returns the env's client acting with an API key.
func (e *env) as(token string) *env {
	c := *e
	c.token = token
	return &c
}

// start runs the whole service (projector and live hub included) on a
// migrated fresh schema behind an httptest server.
func start(t testing.TB, cfg server.Config) *env {
	t.Helper()
	dbURL, _ := pgtest.URL(t)
	poolCfg, err := pgxpool.ParseConfig(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	counter := &atomic.Int64{}
	poolCfg.ConnConfig.Tracer = queryCounter{counter}
	pool, err := pgxpool.NewWithConfig(context.Background(), poolCfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if err := server.Migrate(context.Background(), pool); err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, pool: pool, queries: counter}
	ts := httptest.NewUnstartedServer(nil)
	cfg.PublicURL = "http://" + ts.Listener.Addr().String()
	if e.srv, err = server.New(pool, cfg); err != nil {
		t.Fatal(err)
	}
	e.serve(ts, markCounted(e.srv.Handler()))
	return e
}

// startEmbedded runs the whole service on the embedded default (SQLite
// and files in a directory of the test's) behind an httptest server. Its
// env has no pool: eventCount and the SQL statement counter are for the
// PostgreSQL set-up.
func startEmbedded(t testing.TB, cfg server.Config) *env {
	t.Helper()
	ts := httptest.NewUnstartedServer(nil)
	cfg.PublicURL = "http://" + ts.Listener.Addr().String()
	srv, err := server.NewEmbedded(context.Background(), t.TempDir(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, srv: srv, queries: &atomic.Int64{}}
	e.serve(ts, srv.Handler())
	return e
}

// serve starts ts with the handler and runs e.srv until the test ends,
// then closes both.
func (e *env) serve(ts *httptest.Server, h http.Handler) {
	e.t.Helper()
	ts.Config.Handler = h
	ts.Start()
	e.http = ts
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.srv.Run(ctx); close(done) }()
	e.t.Cleanup(func() { ts.Close(); cancel(); <-done; e.srv.Close() })
	if c := e.srv.ReadCache(); c != nil {
		// Its subscription to the hub is then counted, and subscribers
		// leaves it out.
		eventually(e.t, "the read cache to follow the log", c.Following)
	}
}

// queryCounter counts the statements run for requests that carry the
// X-Count-Queries header, leaving out the background work's.
type queryCounter struct{ n *atomic.Int64 }

type countedKey struct{}

func (q queryCounter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	if ctx.Value(countedKey{}) != nil {
		q.n.Add(1)
	}
	return ctx
}

// markCounted marks the contexts of requests whose queries are counted.
func markCounted(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Count-Queries") != "" {
			r = r.WithContext(context.WithValue(r.Context(), countedKey{}, true))
		}
		next.ServeHTTP(w, r)
	})
}

func (queryCounter) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// gqlResponse is a GraphQL response.
type gqlResponse struct {
	Data   json.RawMessage `json:"data"`
	Errors []struct {
		Message    string         `json:"message"`
		Extensions map[string]any `json:"extensions"`
	} `json:"errors"`
}

// subscribers counts the live hub's subscriptions of GraphQL clients:
// all but the read cache's own. While the read cache is not following
// the log it may hold a subscription all the same (it subscribes, then
// reads the log's head), so the count is not known: -1.
func (e *env) subscribers() int {
	n := e.srv.Hub().Subscribers()
	if c := e.srv.ReadCache(); c != nil {
		if !c.Following() {
			return -1
		}
		n--
	}
	return n
}

// do posts a GraphQL request and decodes the response's data into out.
func (e *env) do(query string, vars map[string]any, out any) gqlResponse {
	e.t.Helper()
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	req, _ := http.NewRequest(http.MethodPost, e.http.URL+"/query", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Count-Queries", "1")
	return e.send(req, out)
}

func (e *env) send(req *http.Request, out any) gqlResponse {
	e.t.Helper()
	if e.token != "" {
		req.Header.Set("Authorization", "Bearer "+e.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var r gqlResponse
	if err := json.Unmarshal(raw, &r); err != nil {
		e.t.Fatalf("response %d is not GraphQL JSON: %s", resp.StatusCode, raw)
	}
	if out != nil && len(r.Data) > 0 && string(r.Data) != "null" {
		if err := json.Unmarshal(r.Data, out); err != nil {
			e.t.Fatalf("decode %s: %v", r.Data, err)
		}
	}
	return r
}

// mustDo is do that fails the test on GraphQL errors.
func (e *env) mustDo(query string, vars map[string]any, out any) {
	e.t.Helper()
	if r := e.do(query, vars, out); len(r.Errors) > 0 {
		e.t.Fatalf("GraphQL errors: %+v", r.Errors)
	}
}

// upload sends uploadImage as a GraphQL multipart request (the spec's
// operations, map and file parts).
func (e *env) upload(filename string, data []byte, input map[string]any, out any) gqlResponse {
	e.t.Helper()
	return e.send(e.uploadRequest(filename, data, input), out)
}

// uploadRequest is the request upload sends.
func (e *env) uploadRequest(filename string, data []byte, input map[string]any) *http.Request {
	if input == nil {
		input = map[string]any{}
	}
	input["file"] = nil
	ops, _ := json.Marshal(map[string]any{"query": uploadMutation, "variables": map[string]any{"input": input}})
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	_ = w.WriteField("operations", string(ops))
	_ = w.WriteField("map", `{"0": ["variables.input.file"]}`)
	fw, _ := w.CreateFormFile("0", filename)
	_, _ = fw.Write(data)
	_ = w.Close()
	req, _ := http.NewRequest(http.MethodPost, e.http.URL+"/query", &buf)
	req.Header.Set("Content-Type", w.FormDataContentType())
	req.Header.Set("GraphQL-Require-Preflight", "1")
	return req
}

const imageFields = `id filename contentType byteSize width height sha256 status url createdAt version
  dithers { edges { cursor node { id levels algorithm serpentine colorSpace status url error } } pageInfo { hasNextPage endCursor } }`

const uploadMutation = `mutation ($input: UploadImageInput!) {
  uploadImage(input: $input) {
    image { ` + imageFields + ` }
    dither { id status levels algorithm }
    userErrors { field message code }
  }
}`

type userError struct{ Field, Message, Code string }

type ditherJSON struct {
	ID, Algorithm, ColorSpace, Status string
	Levels                            int
	Serpentine                        bool
	URL, Error                        *string
}

type imageJSON struct {
	ID, Filename, ContentType, Sha256, Status, URL, CreatedAt string
	ByteSize, Width, Height, Version                          int
	Dithers                                                   struct {
		Edges []struct {
			Cursor string
			Node   ditherJSON
		}
		PageInfo struct {
			HasNextPage bool
			EndCursor   *string
		}
	}
}

type uploadResult struct {
	UploadImage struct {
		Image      *imageJSON
		Dither     *ditherJSON
		UserErrors []userError
	}
}

// mustUpload uploads a file and fails the test unless it was accepted.
func (e *env) mustUpload(filename string, data []byte) imageJSON {
	e.t.Helper()
	var res uploadResult
	if r := e.upload(filename, data, nil, &res); len(r.Errors) > 0 || len(res.UploadImage.UserErrors) > 0 || res.UploadImage.Image == nil {
		e.t.Fatalf("upload %s: errors %+v, user errors %+v", filename, r.Errors, res.UploadImage.UserErrors)
	}
	return *res.UploadImage.Image
}

// openSSE starts a subscription over server-sent events and returns the
// stream's response, closed when the test ends.
func (e *env) openSSE(query string, vars map[string]any) *http.Response {
	e.t.Helper()
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	e.t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, e.http.URL+"/query", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// eventCount is the number of events in the log.
func (e *env) eventCount() int {
	e.t.Helper()
	var n int
	if err := e.pool.QueryRow(context.Background(), "SELECT count(*) FROM events").Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n
}

// eventually polls cond until it holds, failing the test after a minute.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	testwait.Until(t, time.Minute, what, cond)
}

// gradient returns a w x h test image with a colour gradient.
func gradient(w, h int) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.NRGBA{uint8(x * 255 / max(w-1, 1)), uint8(y * 255 / max(h-1, 1)), 128, 255})
		}
	}
	return img
}

func pngBytes(w, h int) []byte {
	var b bytes.Buffer
	_ = png.Encode(&b, gradient(w, h))
	return b.Bytes()
}

func jpegBytes(w, h int) []byte {
	var b bytes.Buffer
	_ = jpeg.Encode(&b, gradient(w, h), &jpeg.Options{Quality: 90})
	return b.Bytes()
}

func gifBytes(w, h int) []byte {
	var b bytes.Buffer
	_ = gif.Encode(&b, gradient(w, h), nil)
	return b.Bytes()
}

// get fetches a URL and returns its status, content type and body.
func get(t *testing.T, url string) (int, string, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Content-Type"), body
}

func errorCodes(r gqlResponse) string {
	var codes []string
	for _, e := range r.Errors {
		codes = append(codes, fmt.Sprint(e.Extensions["code"]))
	}
	return strings.Join(codes, ",")
}
