package main

import (
	"bytes"
	"context"
	"encoding/json"
	"image"
	"image/color"
	"image/png"
	"io"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/imageservice/imageservice/tracing/tracingtest"
)

// TestServeExportsTraces runs serve on the embedded default with an OTLP
// endpoint in the environment: an upload's trace (request, operation,
// the inline dither) reaches the collector with the configured headers,
// flushed at shut-down, and the headers' secret is never logged.
func TestServeExportsTraces(t *testing.T) {
	const (
		traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
		secret  = "s3cret-collector-token"
	)
	col := tracingtest.New(t)
	base, stop, logs, err := serveInProcess(t, map[string]string{
		"DATABASE_URL": "", "POSTGRES_HOST": "", "DATA_DIR": t.TempDir(),
		"OTEL_EXPORTER_OTLP_ENDPOINT": col.BaseURL(), "OTEL_EXPORTER_OTLP_HEADERS": "x-collector-key=" + secret,
		"OTEL_SERVICE_NAME": "imageservice-test",
	})
	if err != nil {
		t.Fatalf("serve did not start: %v: %s", err, logs.String())
	}

	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	_ = mw.WriteField("operations", `{"query":"mutation ($f: Upload!) { uploadImage(input: {file: $f}) { image { id } } }","variables":{"f":null}}`)
	_ = mw.WriteField("map", `{"0":["variables.f"]}`)
	fw, _ := mw.CreateFormFile("0", "cat.png")
	_, _ = fw.Write(pngFile(t, 16, 16))
	_ = mw.Close()
	req, _ := http.NewRequest(http.MethodPost, base+"/query", &body)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("GraphQL-Require-Preflight", "1")
	req.Header.Set("traceparent", "00-"+traceID+"-00f067aa0ba902b7-01")
	var res struct {
		Data struct {
			UploadImage struct{ Image struct{ ID string } }
		}
	}
	postJSON(t, req, &res)
	id := res.Data.UploadImage.Image.ID

	// Wait for the inline processor to dither.
	deadline := time.Now().Add(time.Minute)
	for {
		q, _ := json.Marshal(map[string]any{"query": `query ($id: ID!) { image(id: $id) { dithers { edges { node { status } } } } }`,
			"variables": map[string]any{"id": id}})
		req, _ := http.NewRequest(http.MethodPost, base+"/query", bytes.NewReader(q))
		req.Header.Set("Content-Type", "application/json")
		var st struct {
			Data struct {
				Image struct {
					Dithers struct {
						Edges []struct{ Node struct{ Status string } }
					}
				}
			}
		}
		postJSON(t, req, &st)
		if e := st.Data.Image.Dithers.Edges; len(e) == 1 && e[0].Node.Status == "COMPLETED" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the dither did not complete within a minute")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// serve stops its work, then flushes the spans
	if c := stop(); c != 0 {
		t.Fatalf("serve exited %d: %s", c, logs.String())
	}

	// The batch processor waits 5 s between exports: these spans arrived
	// because serve flushed them on its way out.
	names := map[string]bool{}
	for _, s := range col.Trace(traceID) {
		names[s.Name] = true
		if s.Service != "imageservice-test" {
			t.Errorf("span %s of service %q, want OTEL_SERVICE_NAME's", s.Name, s.Service)
		}
	}
	for _, want := range []string{"POST /query", "mutation uploadImage", "process dither"} {
		if !names[want] {
			t.Errorf("no %q span in the trace; got %v", want, names)
		}
	}
	if got := col.Header().Get("X-Collector-Key"); got != secret {
		t.Errorf("the export carried x-collector-key %q, want OTEL_EXPORTER_OTLP_HEADERS's", got)
	}
	if strings.Contains(logs.String(), secret) {
		t.Errorf("the log holds the OTLP header's secret: %s", logs.String())
	}
	if !strings.Contains(logs.String(), "exporting spans over OTLP") {
		t.Errorf("the log does not say traces are exported: %s", logs.String())
	}
}

// TestServeRefusesABadOTLPEndpoint checks the endpoint is checked at
// start-up, named without its value.
func TestServeRefusesABadOTLPEndpoint(t *testing.T) {
	t.Setenv("DATABASE_URL", "")
	t.Setenv("DATA_DIR", t.TempDir())
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318?token=s3cret")
	var stderr strings.Builder
	if c := run(context.Background(), []string{"serve"}, io.Discard, &stderr); c == 0 {
		t.Fatal("serve started with an OTLP endpoint that is not a URL")
	}
	if !strings.Contains(stderr.String(), "OTEL_EXPORTER_OTLP_ENDPOINT") || strings.Contains(stderr.String(), "s3cret") {
		t.Errorf("error %q, want one naming OTEL_EXPORTER_OTLP_ENDPOINT without its value", stderr.String())
	}
}

// pngFile is a w x h PNG.
func pngFile(t *testing.T, w, h int) []byte {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.NRGBA{uint8(x * 16), uint8(y * 16), 90, 255})
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// postJSON sends req and decodes its JSON response into out.
func postJSON(t *testing.T, req *http.Request, out any) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || json.Unmarshal(raw, out) != nil {
		t.Fatalf("%s %s: %d %s", req.Method, req.URL, resp.StatusCode, raw)
	}
}
