package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"mime/multipart"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/imageservice/imageservice/bridge"
	"github.com/imageservice/imageservice/eventstore"
	"github.com/imageservice/imageservice/images"
	"github.com/imageservice/imageservice/internal/testnet"
	"github.com/imageservice/imageservice/processors"
	"github.com/imageservice/imageservice/processors/cloudsync/cloudsynctest"
	"github.com/imageservice/imageservice/processors/notify"
	"github.com/imageservice/imageservice/server"
	"github.com/imageservice/imageservice/tracing"
	"github.com/imageservice/imageservice/tracing/tracingtest"
)

const (
	clientTraceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	clientSpanID  = "00f067aa0ba902b7"
)

// startNATS runs an embedded JetStream server for the test and returns its URL.
func startNATS(t *testing.T) string {
	t.Helper()
	srv, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: -1, JetStream: true,
		StoreDir: t.TempDir(), NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("embedded NATS did not start")
	}
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	return srv.ClientURL()
}

// natsSink returns a NATS sink to url on the default topics, closed when
// the test ends.
func natsSink(t *testing.T, url string) bridge.Sink {
	t.Helper()
	sink, err := bridge.NewNATS(bridge.NATSOptions{URL: url, Subjects: bridge.Topics{
		Image: bridge.DefaultImageTopic, Dither: bridge.DefaultDitherTopic, Events: bridge.DefaultEventsTopic}.All()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sink.Close() })
	return sink
}

// natsMessages returns the messages in the bridge's stream with their headers.
func natsMessages(t *testing.T, url string) []*jetstream.RawStreamMsg {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	st, err := js.Stream(ctx, bridge.DefaultNATSStream)
	if err != nil {
		return nil // not created yet
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []*jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

// tracedProvider is a tracer provider exporting over OTLP/HTTP to endpoint.
func tracedProvider(t *testing.T, endpoint string) *tracing.Provider {
	t.Helper()
	p, err := tracing.New(context.Background(), tracing.Options{
		Getenv: func(name string) string {
			if name == "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT" {
				return endpoint
			}
			return ""
		},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	if !p.Exporting() {
		t.Fatal("no exporter with an endpoint set")
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = p.Shutdown(ctx)
	})
	return p
}

// spanSet finds spans of one trace.
type spanSet []tracingtest.Span

// one returns the single span that has name and, when given, the attribute
// key=value, failing the test unless there is exactly one.
func (s spanSet) one(t *testing.T, name string, attr ...string) tracingtest.Span {
	t.Helper()
	var found []tracingtest.Span
	for _, sp := range s {
		if sp.Name == name && (len(attr) < 2 || sp.Attributes[attr[0]] == attr[1]) {
			found = append(found, sp)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d spans named %q %v, want 1; the trace has:\n%s", len(found), name, attr, s)
	}
	return found[0]
}

func (s spanSet) String() string {
	var b strings.Builder
	for _, sp := range s {
		b.WriteString("  " + sp.Name + " span " + sp.SpanID + " parent " + sp.ParentSpanID + "\n")
	}
	return b.String()
}

// traceparent is the W3C traceparent of a sampled span.
func traceparent(s tracingtest.Span) string { return "00-" + s.TraceID + "-" + s.SpanID + "-01" }

func TestOneTraceFollowsAnUploadThroughTheDitherAndTheBridge(t *testing.T) {
	col := tracingtest.New(t)
	tp := tracedProvider(t, col.URL())
	natsURL := startNATS(t)
	e := start(t, server.Config{AutoDither: true, TracerProvider: tp.TracerProvider(), Sinks: []bridge.Sink{natsSink(t, natsURL)}})

	imageID := tracedUpload(e, "cat.png", pngBytes(32, 24), nil)

	// The dither completes and the bridge publishes its DITHER_UPLOADED.
	var ditherUploaded *jetstream.RawStreamMsg
	eventually(t, "the bridge to publish DITHER_UPLOADED", func() bool {
		for _, m := range natsMessages(t, natsURL) {
			if m.Header.Get("message_type") == bridge.TypeDitherUploaded {
				ditherUploaded = m
				return true
			}
		}
		return false
	})
	var spans spanSet
	eventually(t, "the spans to be exported", func() bool {
		if err := tp.ForceFlush(context.Background()); err != nil {
			t.Fatal(err)
		}
		spans = col.Trace(clientTraceID)
		sends, others := 0, map[string]bool{}
		for _, s := range spans {
			if strings.HasPrefix(s.Name, "send ") {
				sends++
			}
			others[s.Name] = true
		}
		// images and events for ImageUploaded, events for DitherRequested,
		// dithers and events for DitherCompleted; each span ends a moment
		// after the work it covers is visible.
		return sends >= 5 && others["POST /query"] && others["mutation uploadImage"] && others["process dither"]
	})

	httpSpan := spans.one(t, "POST /query")
	if httpSpan.ParentSpanID != clientSpanID || httpSpan.Kind != tracepb.Span_SPAN_KIND_SERVER {
		t.Errorf("HTTP span %+v, want a server span, child of the client's span %s", httpSpan, clientSpanID)
	}
	if httpSpan.Service != tracing.DefaultServiceName {
		t.Errorf("service.name = %q", httpSpan.Service)
	}
	opSpan := spans.one(t, "mutation uploadImage")
	if opSpan.ParentSpanID != httpSpan.SpanID || opSpan.Attributes["graphql.operation.type"] != "mutation" {
		t.Errorf("operation span %+v, want a child of the HTTP span %s", opSpan, httpSpan.SpanID)
	}
	ditherSpan := spans.one(t, "process dither")
	if ditherSpan.ParentSpanID != opSpan.SpanID || ditherSpan.Kind != tracepb.Span_SPAN_KIND_CONSUMER {
		t.Errorf("dither span %+v, want a consumer span, child of the operation span %s", ditherSpan, opSpan.SpanID)
	}
	if ditherSpan.Attributes["imageservice.image_id"] != imageID || ditherSpan.Attributes["river.job.kind"] != "dither" {
		t.Errorf("dither span attributes %v", ditherSpan.Attributes)
	}
	sendImage := spans.one(t, "send "+bridge.DefaultImageTopic, "imageservice.message_type", bridge.TypeImageUploaded)
	sendDither := spans.one(t, "send "+bridge.DefaultDitherTopic, "imageservice.message_type", bridge.TypeDitherUploaded)
	if sendImage.ParentSpanID != opSpan.SpanID || sendImage.Kind != tracepb.Span_SPAN_KIND_PRODUCER {
		t.Errorf("IMAGE_UPLOADED send span %+v, want a producer span, child of the operation span %s", sendImage, opSpan.SpanID)
	}
	if sendDither.ParentSpanID != ditherSpan.SpanID || sendDither.Attributes["messaging.system"] != "nats" {
		t.Errorf("DITHER_UPLOADED send span %+v, want a child of the dither span %s", sendDither, ditherSpan.SpanID)
	}
	// Every span hangs off the client's span or another span of the trace.
	ids := map[string]bool{clientSpanID: true}
	for _, s := range spans {
		ids[s.SpanID] = true
	}
	for _, s := range spans {
		if !ids[s.ParentSpanID] {
			t.Errorf("span %s (%s) has parent %s, which is not in the trace", s.Name, s.SpanID, s.ParentSpanID)
		}
	}

	// The events record the span that appended them.
	events, err := e.srv.Store().ReadStream(context.Background(), "image-"+imageID, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		images.TypeImageUploaded: traceparent(opSpan), images.TypeDitherRequested: traceparent(opSpan),
		images.TypeDitherCompleted: traceparent(ditherSpan),
	}
	var completed eventstore.Event
	for _, ev := range events {
		if w, ok := want[ev.Type]; ok {
			if ev.Metadata.TraceParent != w {
				t.Errorf("%s records traceparent %q, want %q", ev.Type, ev.Metadata.TraceParent, w)
			}
			delete(want, ev.Type)
		}
		if ev.Type == images.TypeDitherCompleted {
			completed = ev
		}
	}
	if len(want) > 0 {
		t.Errorf("events missing from the stream: %v", want)
	}

	// The broker message carries the send span's context and the event's.
	if got := ditherUploaded.Header.Get("traceparent"); got != traceparent(sendDither) {
		t.Errorf("DITHER_UPLOADED traceparent header %q, want the send span's %q", got, traceparent(sendDither))
	}
	if got := ditherUploaded.Header.Get("ce_traceparent"); got != completed.Metadata.TraceParent {
		t.Errorf("DITHER_UPLOADED ce_traceparent %q, want DitherCompleted's %q", got, completed.Metadata.TraceParent)
	}
}

// A webhook delivery has a client span, a child of its job's span in the
// upload's trace, that names the receiver's host but never the URL's
// token; the receiver gets no trace context.
func TestWebhookDeliveryIsTraced(t *testing.T) {
	col := tracingtest.New(t)
	tp := tracedProvider(t, col.URL())
	hook := newHookServer(t, "s3cret")
	e := start(t, server.Config{AutoDither: true, TracerProvider: tp.TracerProvider(), Processors: processors.Config{
		Notify: notify.Config{WebhookSecret: "s3cret", AllowPrivate: true}}})
	tracedUpload(e, "cat.png", pngBytes(8, 8), map[string]any{"notify": map[string]any{"webhookUrl": hook.URL + "/hook?token=abc"}})
	eventually(t, "the webhook to be delivered", func() bool { return hook.delivered() == 1 })
	var spans spanSet
	eventually(t, "the webhook's spans to be exported", func() bool {
		if err := tp.ForceFlush(context.Background()); err != nil {
			t.Fatal(err)
		}
		spans = col.Trace(clientTraceID)
		names := map[string]bool{}
		for _, s := range spans {
			names[s.Name] = true
		}
		return names["POST webhook"] && names["process notify_webhook"]
	})
	job := spans.one(t, "process notify_webhook")
	post := spans.one(t, "POST webhook")
	host, _, _ := net.SplitHostPort(hook.Listener.Addr().String())
	if post.ParentSpanID != job.SpanID || post.Kind != tracepb.Span_SPAN_KIND_CLIENT ||
		post.Attributes["server.address"] != host || post.Attributes["http.response.status_code"] != "204" {
		t.Errorf("webhook span %+v, want a client span, child of the job's span %s", post, job.SpanID)
	}
	for k, v := range post.Attributes {
		if strings.Contains(v, "token") || strings.Contains(v, "/hook") {
			t.Errorf("webhook span attribute %s = %q holds the URL's path or query", k, v)
		}
	}
	if tp := hook.header("traceparent"); tp != "" {
		t.Errorf("the webhook receiver got traceparent %q", tp)
	}
}

func TestServiceWorksWithTheCollectorDown(t *testing.T) {
	tp := tracedProvider(t, "http://"+testnet.FreeAddr(t)+"/v1/traces")
	e := start(t, server.Config{AutoDither: true, TracerProvider: tp.TracerProvider()})
	req := e.uploadRequest("cat.png", pngBytes(16, 16), nil)
	req.Header.Set("traceparent", "00-"+clientTraceID+"-"+clientSpanID+"-01")
	began := time.Now()
	var res uploadResult
	if r := e.send(req, &res); len(r.Errors) > 0 || res.UploadImage.Image == nil {
		t.Fatalf("upload: %+v %+v", r.Errors, res.UploadImage.UserErrors)
	}
	if d := time.Since(began); d > 10*time.Second {
		t.Errorf("the upload took %s with the collector down", d)
	}
	id := res.UploadImage.Image.ID
	eventually(t, "the dither to complete", func() bool {
		var out struct {
			Image struct {
				Dithers struct{ Edges []struct{ Node ditherJSON } }
			}
		}
		e.mustDo(`query($id: ID!) { image(id: $id) { dithers { edges { node { id status } } } } }`, map[string]any{"id": id}, &out)
		edges := out.Image.Dithers.Edges
		return len(edges) == 1 && edges[0].Node.Status == "COMPLETED"
	})
	events, err := e.srv.Store().ReadStream(context.Background(), "image-"+id, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range events {
		if !strings.HasPrefix(ev.Metadata.TraceParent, "00-"+clientTraceID+"-") {
			t.Errorf("%s records traceparent %q, not in the client's trace", ev.Type, ev.Metadata.TraceParent)
		}
	}
}

func TestWithoutTracingTheClientsContextStillReachesTheEvents(t *testing.T) {
	e := start(t, server.Config{})
	const incoming = "00-" + clientTraceID + "-" + clientSpanID + "-01"
	req := e.uploadRequest("cat.png", pngBytes(16, 16), nil)
	req.Header.Set("traceparent", incoming)
	var res uploadResult
	if r := e.send(req, &res); len(r.Errors) > 0 || res.UploadImage.Image == nil {
		t.Fatalf("upload: %+v %+v", r.Errors, res.UploadImage.UserErrors)
	}
	req = e.uploadRequest("dog.png", pngBytes(16, 17), nil)
	req.Header.Set("traceparent", "00-not-a-trace-context")
	var bad uploadResult
	if r := e.send(req, &bad); len(r.Errors) > 0 || bad.UploadImage.Image == nil {
		t.Fatalf("upload: %+v %+v", r.Errors, bad.UploadImage.UserErrors)
	}
	for id, want := range map[string]string{res.UploadImage.Image.ID: incoming, bad.UploadImage.Image.ID: ""} {
		events, err := e.srv.Store().ReadStream(context.Background(), "image-"+id, 0, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(events) == 0 || events[0].Metadata.TraceParent != want {
			t.Errorf("image %s: events %+v, want traceparent %q", id, events, want)
		}
	}
}

func TestWebsocketsAndSSEWorkWithTracing(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	e := start(t, server.Config{AutoDither: false, NoProcessors: true,
		TracerProvider: sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))})
	img := e.mustUpload("live.png", pngBytes(8, 8))

	// A subscription and a mutation over one websocket (hijacked through the HTTP span).
	c := dialWS(t, e, "graphql-transport-ws")
	send(t, c, map[string]any{"id": "1", "type": "subscribe", "payload": map[string]any{
		"query": `subscription ($id: ID!) { imageEvents(imageId: $id) { type } }`, "variables": map[string]any{"id": img.ID}}})
	eventually(t, "the subscription to open", func() bool { return e.subscribers() == 1 })
	send(t, c, map[string]any{"id": "2", "type": "subscribe", "payload": map[string]any{
		"query":     `mutation ($id: ID!) { requestDither(input: {imageId: $id, levels: 3}) { userErrors { code } } }`,
		"variables": map[string]any{"id": img.ID}}})
	got := map[string]bool{}
	for !got["1"] || !got["2"] {
		m := receive(t, c)
		if m.Type == "next" {
			got[m.ID] = true
		}
	}
	// Over SSE (flushed through the HTTP span).
	resp := e.openSSE(`subscription ($id: ID!) { imageEvents(imageId: $id) { type } }`, map[string]any{"id": img.ID})
	eventually(t, "the SSE subscription to open", func() bool { return e.subscribers() == 2 })
	e.mustDo(`mutation ($id: ID!) { requestDither(input: {imageId: $id, levels: 4}) { userErrors { code } } }`, map[string]any{"id": img.ID}, nil)
	lines, found := bufio.NewScanner(resp.Body), false
	for !found && lines.Scan() {
		found = strings.Contains(lines.Text(), "DitherRequested")
	}
	if !found {
		t.Fatalf("the SSE stream ended without the event: %v", lines.Err())
	}

	// The websocket's mutation recorded its operation's span, a child of
	// the websocket request's span.
	var wsMutation, wsRequest sdktrace.ReadOnlySpan
	for _, s := range rec.Ended() {
		if s.Name() == "mutation requestDither" && s.Parent().IsValid() {
			for _, p := range rec.Started() {
				if p.SpanContext().SpanID() == s.Parent().SpanID() && p.Name() == "GET /query" {
					wsMutation, wsRequest = s, p
				}
			}
		}
	}
	if wsMutation == nil {
		t.Fatal("no span of the websocket's mutation under the websocket's request span")
	}
	events, err := e.srv.Store().ReadStream(context.Background(), "image-"+img.ID, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	want := "00-" + wsRequest.SpanContext().TraceID().String() + "-" + wsMutation.SpanContext().SpanID().String() + "-01"
	if len(events) < 2 || events[1].Metadata.TraceParent != want {
		t.Errorf("the websocket's DitherRequested records %+v, want traceparent %s", events[1:], want)
	}
}

func TestCompatUploadRecordsItsRequestSpan(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	e := start(t, server.Config{NoProcessors: true, TracerProvider: sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))})
	var body strings.Builder
	mw := multipart.NewWriter(&body)
	fw, _ := mw.CreateFormFile("file", "cat.png")
	_, _ = fw.Write(pngBytes(8, 8))
	_ = mw.Close()
	req, _ := http.NewRequest(http.MethodPost, e.http.URL+"/compat/upload/images", strings.NewReader(body.String()))
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("traceparent", "00-"+clientTraceID+"-"+clientSpanID+"-01")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var created struct{ UUID string }
	if err := json.NewDecoder(resp.Body).Decode(&created); err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("compat upload: %d %v", resp.StatusCode, err)
	}
	var span sdktrace.ReadOnlySpan
	eventually(t, "the request's span to end", func() bool {
		for _, s := range rec.Ended() {
			if s.Name() == "POST /compat/upload/images" {
				span = s
			}
		}
		return span != nil
	})
	if span.Parent().SpanID().String() != clientSpanID {
		t.Errorf("the request's span has parent %s, want the client's %s", span.Parent().SpanID(), clientSpanID)
	}
	events, err := e.srv.Store().ReadStream(context.Background(), "image-"+created.UUID, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	want := "00-" + clientTraceID + "-" + span.SpanContext().SpanID().String() + "-01"
	if len(events) == 0 || events[0].Metadata.TraceParent != want {
		t.Errorf("events %+v, want traceparent %s", events, want)
	}
}

// The Cloudinary sync jobs continue the trace of the event that asked for
// them, and the events they record name their spans.
func TestCloudSyncJoinsTheTrace(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	cloud := cloudsynctest.NewServer(t)
	cfg := cloud.Config()
	e := start(t, server.Config{AutoDither: true, Processors: processors.Config{Cloud: &cfg},
		TracerProvider: sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))})
	id := tracedUpload(e, "cloud.png", pngBytes(16, 16), nil)
	byName := map[string]sdktrace.ReadOnlySpan{}
	eventually(t, "both syncs' spans to end", func() bool {
		for _, s := range rec.Ended() {
			byName[s.Name()] = s
		}
		return byName["process cloud_sync_image"] != nil && byName["process cloud_sync_dither"] != nil
	})
	spanID := func(name string) string { return byName[name].SpanContext().SpanID().String() }
	for child, parent := range map[string]string{
		"process cloud_sync_image": "mutation uploadImage", "process dither": "mutation uploadImage",
		"process cloud_sync_dither": "process dither",
	} {
		if s := byName[child]; s == nil || s.Parent().SpanID().String() != spanID(parent) || s.SpanContext().TraceID().String() != clientTraceID {
			t.Errorf("%s is not a child of %s in the client's trace", child, parent)
		}
	}
	events, err := e.srv.Store().ReadStream(context.Background(), "image-"+id, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{images.TypeImageSynced: "process cloud_sync_image", images.TypeDitherSynced: "process cloud_sync_dither"}
	for _, ev := range events {
		if name, ok := want[ev.Type]; ok {
			if w := "00-" + clientTraceID + "-" + spanID(name) + "-01"; ev.Metadata.TraceParent != w {
				t.Errorf("%s records %q, want %s's %q", ev.Type, ev.Metadata.TraceParent, name, w)
			}
			delete(want, ev.Type)
		}
	}
	if len(want) > 0 {
		t.Errorf("not recorded: %v", want)
	}
	// Each sync's upload to Cloudinary has a client span, a child of its job's.
	calls := map[string]int{}
	for _, s := range rec.Ended() {
		if s.Name() == "POST cloudinary" && s.SpanKind() == trace.SpanKindClient {
			calls[s.Parent().SpanID().String()]++
		}
	}
	if calls[spanID("process cloud_sync_image")] != 1 || calls[spanID("process cloud_sync_dither")] != 1 {
		t.Errorf("Cloudinary client spans by parent %v, want one under each sync job's span", calls)
	}
}

// A notification job continues the trace of the dither's outcome, and its
// outcome event names its span.
func TestNotificationJoinsTheTrace(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	e := start(t, server.Config{AutoDither: true, Processors: processors.Config{Notify: notify.Config{WebhookSecret: "s3cret"}},
		TracerProvider: sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))})
	// A loopback webhook is refused at once: NotificationFailed, no retries.
	req := e.uploadRequest("cat.png", pngBytes(16, 16), map[string]any{"notify": map[string]any{"webhookUrl": "http://127.0.0.1:1/hook"}})
	req.Header.Set("traceparent", "00-"+clientTraceID+"-"+clientSpanID+"-01")
	var res uploadResult
	if r := e.send(req, &res); len(r.Errors) > 0 || res.UploadImage.Image == nil {
		t.Fatalf("upload: %+v %+v", r.Errors, res.UploadImage.UserErrors)
	}
	byName := map[string]sdktrace.ReadOnlySpan{}
	eventually(t, "the notification's span to end", func() bool {
		for _, s := range rec.Ended() {
			byName[s.Name()] = s
		}
		return byName["process notify_webhook"] != nil
	})
	notifySpan, ditherSpan := byName["process notify_webhook"], byName["process dither"]
	if ditherSpan == nil || notifySpan.Parent().SpanID() != ditherSpan.SpanContext().SpanID() ||
		notifySpan.SpanContext().TraceID().String() != clientTraceID {
		t.Fatalf("the notification's span is not a child of the dither's in the client's trace")
	}
	events, err := e.srv.Store().ReadStream(context.Background(), "image-"+res.UploadImage.Image.ID, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	want := "00-" + clientTraceID + "-" + notifySpan.SpanContext().SpanID().String() + "-01"
	found := false
	for _, ev := range events {
		if ev.Type == images.TypeNotificationFailed {
			found = true
			if ev.Metadata.TraceParent != want {
				t.Errorf("NotificationFailed records %q, want the job's %q", ev.Metadata.TraceParent, want)
			}
		}
	}
	if !found {
		t.Error("no NotificationFailed recorded")
	}
}

// tracedUpload uploads a file in the client's trace (clientTraceID) and
// returns the image's id.
func tracedUpload(e *env, filename string, data []byte, input map[string]any) string {
	e.t.Helper()
	req := e.uploadRequest(filename, data, input)
	req.Header.Set("traceparent", "00-"+clientTraceID+"-"+clientSpanID+"-01")
	var res uploadResult
	if r := e.send(req, &res); len(r.Errors) > 0 || res.UploadImage.Image == nil {
		e.t.Fatalf("upload %s: %+v %+v", filename, r.Errors, res.UploadImage.UserErrors)
	}
	return res.UploadImage.Image.ID
}
