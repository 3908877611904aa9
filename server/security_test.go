package server_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/imageservice/imageservice/auth"
	"github.com/imageservice/imageservice/bridge"
	"github.com/imageservice/imageservice/eventstore"
	"github.com/imageservice/imageservice/images"
	"github.com/imageservice/imageservice/server"
)

func createKey(t *testing.T, e *env, name string, scopes ...string) string {
	t.Helper()
	_, token, err := e.srv.Keys().Create(context.Background(), name, scopes)
	if err != nil {
		t.Fatal(err)
	}
	return token
}

// Two owners over every operation that takes an id; bad, revoked and
// missing keys; reads public or private.
func TestOwnersAndKeys(t *testing.T) {
	e := start(t, server.Config{AutoDither: true, NoProcessors: true, PrivateReads: true})
	alice := createKey(t, e, "alice", auth.ScopeRead, auth.ScopeWrite)
	bob := createKey(t, e, "bob", auth.ScopeRead, auth.ScopeWrite)
	admin := createKey(t, e, "ops", auth.ScopeAdmin)
	reader := createKey(t, e, "reader", auth.ScopeRead)

	img := e.as(alice).mustUpload("alice.png", pngBytes(4, 4))
	ditherID := img.Dithers.Edges[0].Node.ID
	eventually(t, "the image to be projected", func() bool {
		var q struct {
			Images struct {
				Edges []struct{ Node struct{ ID string } }
			}
			Dither *struct{ ID string }
		}
		e.as(alice).mustDo(`query ($d: ID!) { images { edges { node { id } } } dither(id: $d) { id } }`, map[string]any{"d": ditherID}, &q)
		return len(q.Images.Edges) == 1 && q.Dither != nil
	})

	// Reads: the owner and admins see it; others are told it does not exist.
	for _, c := range []struct {
		who   string
		token string
		sees  bool
	}{{"alice", alice, true}, {"admin", admin, true}, {"bob", bob, false}, {"reader", reader, false}} {
		var q struct {
			Image, Dither, Node, ImageAt *struct{ ID string }
			Images                       struct {
				Edges []struct{ Node struct{ ID string } }
			}
		}
		r := e.as(c.token).do(`query ($id: ID!, $d: ID!) { image(id: $id) { id } dither(id: $d) { id } node(id: $id) { id }
			imageAt(id: $id, version: 1) { id } images { edges { node { id } } } }`, map[string]any{"id": img.ID, "d": ditherID}, &q)
		if len(r.Errors) > 0 {
			t.Fatalf("%s: %+v", c.who, r.Errors)
		}
		sees := q.Image != nil && q.Dither != nil && q.Node != nil && q.ImageAt != nil && len(q.Images.Edges) == 1
		hidden := q.Image == nil && q.Dither == nil && q.Node == nil && q.ImageAt == nil && len(q.Images.Edges) == 0
		if (c.sees && !sees) || (!c.sees && !hidden) {
			t.Errorf("%s: sees %+v", c.who, q)
		}
	}

	// Writes on another's image are answered as not found; the owner and an admin may.
	mutate := func(token, query string) []userError {
		var out map[string]struct{ UserErrors []userError }
		r := e.as(token).do(query, map[string]any{"id": img.ID}, &out)
		if len(r.Errors) > 0 {
			t.Fatalf("%s: %+v", query, r.Errors)
		}
		for _, v := range out {
			return v.UserErrors
		}
		return nil
	}
	dither := `mutation ($id: ID!) { requestDither(input: {imageId: $id}) { userErrors { code } } }`
	del := `mutation ($id: ID!) { deleteImage(input: {id: $id}) { userErrors { code } } }`
	before := e.eventCount()
	for _, q := range []string{dither, del} {
		if ue := mutate(bob, q); len(ue) != 1 || ue[0].Code != "NOT_FOUND" {
			t.Errorf("bob on alice's image: %+v", ue)
		}
	}
	if e.eventCount() != before {
		t.Fatal("refused writes appended events")
	}
	if ue := mutate(alice, dither); len(ue) != 0 {
		t.Errorf("alice's own dither: %+v", ue)
	}
	if ue := mutate(admin, del); len(ue) != 0 {
		t.Errorf("admin delete: %+v", ue)
	}

	// Keys that may not write, and no key at all.
	for who, token := range map[string]string{"reader": reader, "nobody": ""} {
		r := e.as(token).upload("x.png", pngBytes(2, 2), nil, nil)
		if errorCodes(r) != "UNAUTHENTICATED" {
			t.Errorf("%s uploads: %+v", who, r.Errors)
		}
	}
	r := e.do(`{ images { edges { cursor } } }`, nil, nil)
	if errorCodes(r) != "UNAUTHENTICATED" {
		t.Errorf("a private read without a key: %+v", r.Errors)
	}

	// Bad and revoked keys are refused over HTTP (401) and websockets (4403).
	list, _ := e.srv.Keys().List(context.Background())
	var bobID string
	for _, k := range list {
		if k.Name == "bob" {
			bobID = k.ID
		}
	}
	if err := e.srv.Keys().Revoke(context.Background(), bobID); err != nil {
		t.Fatal(err)
	}
	for who, token := range map[string]string{"revoked": bob, "forged": alice[:len(alice)-4] + "abcd", "garbage": "nonsense"} {
		req, _ := http.NewRequest(http.MethodPost, e.http.URL+"/query", strings.NewReader(`{"query":"{ images { edges { cursor } } }"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s key: HTTP %d, want 401", who, resp.StatusCode)
		}
		if code := wsInitClose(t, e, token); code != 4403 {
			t.Errorf("%s key over websocket: close %d, want 4403", who, code)
		}
	}
	if code := wsInitClose(t, e, ""); code != 4403 {
		t.Errorf("no key over websocket with private reads: close %d, want 4403", code)
	}
	if code := wsInitClose(t, e, alice); code != 0 {
		t.Errorf("a good key over websocket: close %d", code)
	}
}

// wsInitClose opens a websocket with the key in connection_init and
// returns the close code the server answers with (0: acknowledged).
func wsInitClose(t *testing.T, e *env, token string) websocket.StatusCode {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	url := "ws" + strings.TrimPrefix(e.http.URL, "http") + "/query"
	c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: []string{"graphql-transport-ws"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	payload := map[string]any{}
	if token != "" {
		payload["Authorization"] = "Bearer " + token
	}
	send(t, c, map[string]any{"type": "connection_init", "payload": payload})
	for {
		_, data, err := c.Read(ctx)
		if err != nil {
			return websocket.CloseStatus(err)
		}
		if strings.Contains(string(data), "connection_ack") {
			return 0
		}
	}
}

// CSRF: a multipart post without a preflight header is refused; a
// cross-origin websocket is refused; too deep and too aliased queries are refused.
func TestRequestHardening(t *testing.T) {
	e := start(t, server.Config{NoProcessors: true})
	req, _ := http.NewRequest(http.MethodPost, e.http.URL+"/query", strings.NewReader("--x--\r\n"))
	req.Header.Set("Content-Type", "multipart/form-data; boundary=x")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("multipart without preflight header: %d, want 400", resp.StatusCode)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, resp, err = websocket.Dial(ctx, "ws"+strings.TrimPrefix(e.http.URL, "http")+"/query", &websocket.DialOptions{
		Subprotocols: []string{"graphql-transport-ws"}, HTTPHeader: http.Header{"Origin": {"https://evil.example"}}})
	if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-origin websocket: %v %v, want 403", err, resp)
	}
	deep := "{ images(first: 1) { edges { node { dithers(first: 1) { edges { node { image { dithers(first: 1) { edges { node { image { dithers(first: 1) { edges { node { id } } } } } } } } } } } } } } }"
	if r := e.do(deep, nil, nil); errorCodes(r) != "QUERY_TOO_DEEP" {
		t.Errorf("deep query: %+v", r.Errors)
	}
	var many strings.Builder
	many.WriteString("{")
	for i := range 40 {
		many.WriteString(" a" + strings.Repeat("x", i%3) + string(rune('a'+i%26)) + string(rune('a'+i/26)) + ": images(first: 1) { edges { cursor } }")
	}
	many.WriteString(" }")
	if r := e.do(many.String(), nil, nil); errorCodes(r) != "TOO_MANY_ALIASES" && errorCodes(r) != "COMPLEXITY_LIMIT_EXCEEDED" {
		t.Errorf("40 aliases: %+v", r.Errors)
	}
	resp, err = http.Get(e.http.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("X-Content-Type-Options") != "nosniff" || resp.Header.Get("X-Frame-Options") != "DENY" {
		t.Errorf("security headers missing: %v", resp.Header)
	}
}

// The complexity limit weighs each connection by its page size: pages of
// images with their dithers and history pass (the web page asks for
// those), a third connection nested under two pages of 100 is refused
// (a million events), and so are many aliases of a large page.
func TestComplexityWeighsPages(t *testing.T) {
	e := start(t, server.Config{NoProcessors: true})
	e.mustUpload("c.png", pngBytes(4, 4))
	const dither = "id levels algorithm serpentine strength status url error durationMs requestedAt completedAt"
	const event = "id position streamVersion type recordedAt data metadata"
	accepted := map[string]string{
		"image page": `{ images(first: 1) { edges { node { id dithers(first: 100) { edges { node { ` + dither +
			` } } pageInfo { hasNextPage endCursor } } history(first: 100) { edges { node { ` + event + ` } } } } } } }`,
		"100 images with 100 dithers":   `{ images(first: 100) { edges { node { id filename dithers(first: 100) { edges { cursor node { ` + dither + ` } } } } } } }`,
		"100 images with their history": `{ images(first: 100) { edges { node { id history(first: 100) { edges { node { ` + event + ` } } } } } } }`,
	}
	for name, q := range accepted {
		if r := e.do(q, nil, nil); len(r.Errors) > 0 {
			t.Errorf("%s: %+v", name, r.Errors)
		}
	}
	var aliases strings.Builder
	aliases.WriteString("{")
	for i := range 5 {
		fmt.Fprintf(&aliases, " a%d: images(first: 100) { edges { node { history(first: 100) { edges { node { %s } } } } } }", i, event)
	}
	aliases.WriteString(" }")
	refused := map[string]string{
		"three connections of 100":            `{ images(first: 100) { edges { node { dithers(first: 100) { edges { node { image { history(first: 100) { edges { node { id } } } } } } } } } } }`,
		"five aliases of 100 images' history": aliases.String(),
	}
	for name, q := range refused {
		if r := e.do(q, nil, nil); errorCodes(r) != "COMPLEXITY_LIMIT_EXCEEDED" {
			t.Errorf("%s: %+v, want COMPLEXITY_LIMIT_EXCEEDED", name, r.Errors)
		}
	}
}

// /metrics publishes requests, operations, lags, the job queue and the
// oldest open writing transaction in Prometheus's format.
func TestMetrics(t *testing.T) {
	e := start(t, server.Config{AutoDither: true})
	e.mustUpload("m.png", pngBytes(8, 8))
	eventually(t, "the dither to complete and the metrics to show it", func() bool {
		_, _, body := get(t, e.http.URL+"/metrics")
		s := string(body)
		for _, want := range []string{
			`imageservice_http_request_duration_seconds_count{method="POST",route="all",status="200"}`,
			`imageservice_graphql_operation_duration_seconds_count{operation="mutation",outcome="ok"} 1`,
			`imageservice_subscription_lag_events{subscription="projections/0"} 0`,
			`imageservice_jobs{state="completed"} 1`,
			`imageservice_oldest_write_transaction_seconds`,
			`imageservice_dither_duration_seconds{quantile="0.5"}`,
			`imageservice_append_duration_seconds_count{outcome="ok"}`,
			`imageservice_read_cache_misses_total`,
			`imageservice_read_cache_hits_total`,
			// Every event in the log was appended by this process.
			"imageservice_appended_events_total " + strconv.Itoa(e.eventCount()) + "\n",
		} {
			if !strings.Contains(s, want) {
				return false
			}
		}
		return true
	})
}

// /metrics counts the messages each bridge's broker acknowledged and
// times its batches by outcome.
func TestBridgeMetrics(t *testing.T) {
	natsURL := startNATS(t)
	e := start(t, server.Config{NoProcessors: true, Sinks: []bridge.Sink{natsSink(t, natsURL)}})
	e.mustUpload("m.png", pngBytes(8, 8))
	// ImageUploaded: IMAGE_UPLOADED and its CloudEvent.
	want := `imageservice_bridge_published_messages_total{sink="nats"} 2` + "\n"
	eventually(t, "the bridge's metrics", func() bool {
		_, _, body := get(t, e.http.URL+"/metrics")
		return strings.Contains(string(body), want) &&
			strings.Contains(string(body), `imageservice_bridge_publish_duration_seconds_count{outcome="ok",sink="nats"}`)
	})
	if n := len(natsMessages(t, natsURL)); n != 2 {
		t.Fatalf("the stream holds %d messages, the metric says 2", n)
	}
}

// Uploads beyond a client's write rate are answered 429 with Retry-After,
// per client: another key is not held back.
func TestWriteRateLimit(t *testing.T) {
	e := start(t, server.Config{NoProcessors: true, WriteRate: 0.001, WriteBurst: 2})
	upload := func(token string) int {
		var res uploadResult
		r := e.as(token).upload("r.png", pngBytes(2, 2), nil, &res)
		if len(r.Errors) > 0 && errorCodes(r) == "RATE_LIMITED" {
			return http.StatusTooManyRequests
		}
		return http.StatusOK
	}
	if upload("") != 200 || upload("") != 200 {
		t.Fatal("the burst was refused")
	}
	if upload("") != http.StatusTooManyRequests {
		t.Fatal("the third upload in a burst of 2 was accepted")
	}
	other := createKey(t, e, "other", auth.ScopeWrite)
	if upload(other) != 200 {
		t.Fatal("another client was held back")
	}
}

// GraphQL mutations sent as JSON or over a websocket take from the same
// budget as uploads: beyond it they are answered RATE_LIMITED (over HTTP
// with 429 and Retry-After), and nothing is appended. Queries are not
// limited.
func TestMutationRateLimit(t *testing.T) {
	e := start(t, server.Config{NoProcessors: true, WriteRate: 0.001, WriteBurst: 2})
	img := e.mustUpload("a.png", pngBytes(4, 4)) // the first token
	const dither = `mutation ($id: ID!) { requestDither(input: {imageId: $id, levels: 3}) { dither { id } userErrors { code } } }`
	post := func() (*http.Response, gqlResponse) {
		body, _ := json.Marshal(map[string]any{"query": dither, "variables": map[string]any{"id": img.ID}})
		resp, err := http.Post(e.http.URL+"/query", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var r gqlResponse
		if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
			t.Fatalf("decode: %v", err)
		}
		return resp, r
	}
	if resp, r := post(); resp.StatusCode != http.StatusOK || len(r.Errors) > 0 {
		t.Fatalf("the second write of a burst of 2: %d %+v", resp.StatusCode, r.Errors)
	}
	before := e.eventCount()
	resp, r := post()
	if resp.StatusCode != http.StatusTooManyRequests || errorCodes(r) != "RATE_LIMITED" {
		t.Fatalf("the third write: %d %+v, want 429 RATE_LIMITED", resp.StatusCode, r.Errors)
	}
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || s < 1 {
		t.Fatalf("Retry-After %q", resp.Header.Get("Retry-After"))
	}
	if n := e.eventCount(); n != before {
		t.Fatalf("a refused mutation appended %d events", n-before)
	}
	var got struct{ Image struct{ ID string } }
	e.mustDo(`query ($id: ID!) { image(id: $id) { id } }`, map[string]any{"id": img.ID}, &got)

	c := dialWS(t, e, "graphql-transport-ws")
	send(t, c, map[string]any{"id": "1", "type": "subscribe", "payload": map[string]any{"query": dither, "variables": map[string]any{"id": img.ID}}})
	m := receive(t, c)
	if m.Type != "next" && m.Type != "error" || !strings.Contains(string(m.Payload), "RATE_LIMITED") {
		t.Fatalf("websocket mutation beyond the rate: %s %s", m.Type, m.Payload)
	}
	if n := e.eventCount(); n != before {
		t.Fatalf("a refused websocket mutation appended %d events", n-before)
	}
}

// With private reads, a subscription to every image's dither outcomes
// shows a key only its own images' dithers.
func TestPrivateDitherOutcomes(t *testing.T) {
	e := start(t, server.Config{AutoDither: true, PrivateReads: true})
	alice := createKey(t, e, "alice", auth.ScopeRead, auth.ScopeWrite)
	bob := createKey(t, e, "bob", auth.ScopeRead, auth.ScopeWrite)
	c := dialWSAs(t, e, "graphql-transport-ws", bob)
	send(t, c, map[string]any{"id": "all", "type": "subscribe", "payload": map[string]any{"query": ditherCompletedSub}})
	eventually(t, "the subscription to open", func() bool { return e.subscribers() == 1 })

	theirs := e.as(alice).mustUpload("alice.png", pngBytes(8, 8))
	eventually(t, "alice's dither to complete", func() bool {
		var q struct{ Image imageJSON }
		e.as(alice).mustDo(`query ($id: ID!) { image(id: $id) { `+imageFields+` } }`, map[string]any{"id": theirs.ID}, &q)
		return len(q.Image.Dithers.Edges) == 1 && q.Image.Dithers.Edges[0].Node.Status == "COMPLETED"
	})
	mine := e.as(bob).mustUpload("bob.png", pngBytes(8, 8))
	if d := nextCompleted(t, c); d.Image.ID != mine.ID {
		t.Errorf("bob was told of the dither of %s (alice's is %s), want his own %s", d.Image.ID, theirs.ID, mine.ID)
	}
}

// During a rolling deploy an image may hold an event of a newer build: a
// mutation on it is refused with SERVICE_UNAVAILABLE over HTTP and
// appends nothing, rather than decide without that event.
func TestMutationOnNewerEventsIsUnavailable(t *testing.T) {
	e := start(t, server.Config{NoProcessors: true})
	img := e.mustUpload("n.png", pngBytes(4, 4))
	ctx := context.Background()
	stream := "image-" + img.ID
	newer := eventstore.NewEvent{ID: eventstore.NewEventID(), Type: images.TypeImageDeleted,
		SchemaVersion: images.ImageDeletedVersion + 1, Data: []byte(`{}`)}
	if _, err := e.srv.Store().Append(ctx, stream, eventstore.Exact(int64(img.Version)), newer); err != nil {
		t.Fatal(err)
	}
	r := e.do(`mutation ($id: ID!) { requestDither(input: {imageId: $id}) { dither { id } userErrors { code } } }`,
		map[string]any{"id": img.ID}, nil)
	if errorCodes(r) != "SERVICE_UNAVAILABLE" {
		t.Fatalf("requestDither on an image with a newer event: %+v, want SERVICE_UNAVAILABLE", r.Errors)
	}
	events, err := e.srv.Store().ReadStream(ctx, stream, 0, 100)
	if err != nil || len(events) != img.Version+1 || events[len(events)-1].ID != newer.ID {
		t.Fatalf("stream after the refused mutation: %d events (%v), want %d ending with the newer event", len(events), err, img.Version+1)
	}
}

// The automatic persisted queries, the one query cache a client can see
// into, are bounded over HTTP as the parsed-document cache is (graph's
// boundedCache): a query sent with its hash is then run from the hash
// alone, until 1000 other queries have been kept since it was last used;
// a query over 16 KiB is run but never kept.
func TestPersistedQueriesAreBounded(t *testing.T) {
	const kept = 1000 // entries of each of graph.NewHandler's query caches
	e := startEmbedded(t, server.Config{NoProcessors: true})
	query := func(i int) string { return fmt.Sprintf("query q%d { __typename }", i) }
	send := func(q string, withText bool) gqlResponse {
		t.Helper()
		sum := sha256.Sum256([]byte(q))
		body := map[string]any{"extensions": map[string]any{
			"persistedQuery": map[string]any{"version": 1, "sha256Hash": hex.EncodeToString(sum[:])}}}
		if withText {
			body["query"] = q
		}
		raw, _ := json.Marshal(body)
		req, _ := http.NewRequest(http.MethodPost, e.http.URL+"/query", bytes.NewReader(raw))
		req.Header.Set("Content-Type", "application/json")
		return e.send(req, nil)
	}
	run := func(what, q string, withText bool) {
		t.Helper()
		if r := send(q, withText); len(r.Errors) > 0 || !strings.Contains(string(r.Data), "__typename") {
			t.Fatalf("%s: %s %+v, want it run", what, r.Data, r.Errors)
		}
	}
	notKept := func(what, q string) {
		t.Helper()
		if r := send(q, false); errorCodes(r) != "PERSISTED_QUERY_NOT_FOUND" {
			t.Fatalf("%s sent by its hash alone: %s %+v, want PERSISTED_QUERY_NOT_FOUND", what, r.Data, r.Errors)
		}
	}

	notKept("a query never sent", query(0))
	run("the first query", query(0), true)
	run("the first query", query(0), false)
	for i := 1; i <= kept; i++ {
		run("another query", query(i), true)
	}
	run("the last query", query(kept), false)
	run(fmt.Sprintf("the %dth last query", kept), query(1), false)
	notKept(fmt.Sprintf("the query used before %d others", kept), query(0))

	long := "{ __typename }\n#" + strings.Repeat("x", 16<<10)
	run("a query over 16 KiB", long, true)
	notKept("a query over 16 KiB", long)
}
