package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	blobpg "github.com/imageservice/imageservice/blobstore/postgres"
	"github.com/imageservice/imageservice/commands"
	"github.com/imageservice/imageservice/eventstore"
	espg "github.com/imageservice/imageservice/eventstore/postgres"
	"github.com/imageservice/imageservice/graph"
	"github.com/imageservice/imageservice/images"
	"github.com/imageservice/imageservice/server"
)

// otherProcess completes a dither through a pool and event store of its
// own, as another replica or a processor would: the service only learns of
// it from the log.
func otherProcess(t *testing.T, e *env, imageID, ditherID string) {
	t.Helper()
	ctx := context.Background()
	pool, err := pgxpool.NewWithConfig(ctx, e.pool.Config().Copy())
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	store := espg.Open(pool, espg.Options{})
	defer store.Close()
	blobs := blobpg.New(pool)
	result, err := blobs.Put(ctx, "image/png", strings.NewReader(string(pngBytes(3, 3))))
	if err != nil {
		t.Fatal(err)
	}
	svc := commands.New(commands.Postgres{Store: store, Blobs: blobs}, commands.Options{})
	_, err = svc.CompleteDither(ctx, uuid.MustParse(imageID), images.DitherResult{
		DitherID: uuid.MustParse(ditherID), ResultKey: result.Key, ByteSize: result.Size,
		Width: 3, Height: 3, Colours: 2, DurationMs: 7, CompletedAt: time.Now(),
	}, eventstore.Metadata{Actor: "test-processor"})
	if err != nil {
		t.Fatal(err)
	}
}

const ditherCompletedSub = `subscription ($id: ID) { ditherCompleted(imageId: $id) { id status url durationMs colours image { id } } }`

type completed struct {
	DitherCompleted struct {
		ID, Status string
		URL        *string
		DurationMs int
		Colours    int
		Image      struct{ ID string }
	}
}

func dialWS(t *testing.T, e *env, protocol string) *websocket.Conn {
	t.Helper()
	return dialWSAs(t, e, protocol, "")
}

// dialWSAs is dialWS with an API key in connection_init ("" for none).
func dialWSAs(t *testing.T, e *env, protocol, token string) *websocket.Conn {
	t.Helper()
	return dialWSWith(t, e, protocol, token, nil)
}

// dialWSWith is dialWSAs with the upgrade request's extra headers
// (X-Count-Queries to count the SQL statements of its operations).
func dialWSWith(t *testing.T, e *env, protocol, token string, header http.Header) *websocket.Conn {
	t.Helper()
	c, status, body := dialRaw(t, e, protocol, header)
	if c == nil {
		t.Fatalf("websocket refused: %d %s", status, body)
	}
	if c.Subprotocol() != protocol {
		t.Fatalf("subprotocol %q, want %q", c.Subprotocol(), protocol)
	}
	payload := map[string]any{}
	if token != "" {
		payload["Authorization"] = "Bearer " + token
	}
	send(t, c, map[string]any{"type": "connection_init", "payload": payload})
	if m := receive(t, c); m.Type != "connection_ack" {
		t.Fatalf("got %+v, want connection_ack", m)
	}
	return c
}

// dialRaw opens a websocket on /query with the subprotocol, sending
// header with the upgrade request, and returns it (closed when the test
// ends), or nil and the status and body of a refusal.
func dialRaw(t *testing.T, e *env, protocol string, header http.Header) (*websocket.Conn, int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	url := "ws" + strings.TrimPrefix(e.http.URL, "http") + "/query"
	c, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: []string{protocol}, HTTPHeader: header})
	if err == nil {
		t.Cleanup(func() { c.Close(websocket.StatusNormalClosure, "") })
		return c, http.StatusSwitchingProtocols, ""
	}
	if resp == nil {
		t.Fatalf("dial: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	return nil, resp.StatusCode, string(body)
}

type wsMessage struct {
	ID      string          `json:"id"`
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload"`
}

func send(t *testing.T, c *websocket.Conn, v any) {
	t.Helper()
	if err := wsjson.Write(context.Background(), c, v); err != nil {
		t.Fatal(err)
	}
}

// receive reads the next message that is not a keep-alive.
func receive(t *testing.T, c *websocket.Conn) wsMessage {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for {
		var m wsMessage
		if err := wsjson.Read(ctx, c, &m); err != nil {
			t.Fatalf("read: %v", err)
		}
		if m.Type != "ping" && m.Type != "pong" && m.Type != "ka" {
			return m
		}
	}
}

func TestDitherCompletedOverWebsocket(t *testing.T) {
	for _, proto := range []struct{ name, start, data string }{
		{"graphql-transport-ws", "subscribe", "next"},
		{"graphql-ws", "start", "data"},
	} {
		t.Run(proto.name, func(t *testing.T) {
			// No processor here: the test plays it, from another process.
			e := start(t, server.Config{AutoDither: true, NoProcessors: true})
			img := e.mustUpload("live.png", pngBytes(8, 8))
			ditherID := img.Dithers.Edges[0].Node.ID
			c := dialWS(t, e, proto.name)
			send(t, c, map[string]any{"id": "1", "type": proto.start, "payload": map[string]any{
				"query": ditherCompletedSub, "variables": map[string]any{"id": img.ID}}})
			eventually(t, "the subscription to open", func() bool { return e.subscribers() == 1 })
			otherProcess(t, e, img.ID, ditherID)
			m := receive(t, c)
			if m.Type != proto.data || m.ID != "1" {
				t.Fatalf("got %+v, want %s", m, proto.data)
			}
			var p struct{ Data completed }
			if err := json.Unmarshal(m.Payload, &p); err != nil {
				t.Fatal(err)
			}
			d := p.Data.DitherCompleted
			if d.ID != ditherID || d.Status != "COMPLETED" || d.URL == nil || d.DurationMs != 7 || d.Colours != 2 || d.Image.ID != img.ID {
				t.Fatalf("ditherCompleted = %+v", d)
			}
			// Leaving frees the subscription.
			stop := map[string]any{"id": "1", "type": "complete"}
			if proto.name == "graphql-ws" {
				stop["type"] = "stop"
			}
			send(t, c, stop)
			eventually(t, "the subscription to close", func() bool { return e.subscribers() == 0 })
		})
	}
}

func TestSubscriptionsOverSSE(t *testing.T) {
	// No processors: a completed automatic dither would otherwise race
	// the requested one to be the first event after the subscription.
	e := start(t, server.Config{AutoDither: true, NoProcessors: true})
	img := e.mustUpload("sse.png", pngBytes(8, 8))
	resp := e.openSSE(`subscription ($id: ID!) { imageEvents(imageId: $id) { type streamVersion } }`, map[string]any{"id": img.ID})
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		t.Fatalf("content type %q", ct)
	}
	eventually(t, "the subscription to open", func() bool { return e.subscribers() == 1 })
	var rd struct {
		RequestDither struct{ UserErrors []userError }
	}
	e.mustDo(`mutation ($id: ID!) { requestDither(input: {imageId: $id, levels: 3}) { userErrors { code } } }`,
		map[string]any{"id": img.ID}, &rd)
	lines := bufio.NewScanner(resp.Body)
	for lines.Scan() {
		data, ok := strings.CutPrefix(lines.Text(), "data: ")
		if !ok || strings.TrimSpace(data) == "" {
			continue
		}
		var p struct {
			Data struct {
				ImageEvents struct {
					Type          string
					StreamVersion int
				}
			}
		}
		if err := json.Unmarshal([]byte(data), &p); err != nil {
			t.Fatalf("SSE data %q: %v", data, err)
		}
		if ev := p.Data.ImageEvents; ev.Type != "DitherRequested" || ev.StreamVersion != 3 {
			t.Fatalf("imageEvents = %+v", ev)
		}
		return
	}
	t.Fatalf("stream ended: %v", lines.Err())
}

func TestSubscriptionToUnknownImageIsRefused(t *testing.T) {
	e := start(t, server.Config{})
	c := dialWS(t, e, "graphql-transport-ws")
	send(t, c, map[string]any{"id": "1", "type": "subscribe", "payload": map[string]any{
		"query": ditherCompletedSub, "variables": map[string]any{"id": uuid.NewString()}}})
	m := receive(t, c)
	if (m.Type != "error" && m.Type != "next") || !strings.Contains(string(m.Payload), "NOT_FOUND") {
		t.Fatalf("got %s %s, want an error with NOT_FOUND", m.Type, m.Payload)
	}
	if m.Type == "next" {
		if m := receive(t, c); m.Type != "complete" {
			t.Fatalf("got %s after the error, want complete", m.Type)
		}
	}
	eventually(t, "the refused subscription to be freed", func() bool { return e.subscribers() == 0 })
}

// A subscriber that stops reading is closed once its buffer is full,
// without holding back the log or other subscribers, and is told why with
// a SUBSCRIBER_TOO_SLOW error after the events it was sent.
func TestSlowSubscriberIsToldAndClosed(t *testing.T) {
	e := start(t, server.Config{NoProcessors: true, SubscriptionBuffer: 1})
	img := e.mustUpload("slow.png", pngBytes(4, 4))
	// A tiny receive buffer, so that the service's writes soon block on
	// a client that does not read.
	dialer := &net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 2048) })
		return errors.Join(err, serr)
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	url := "ws" + strings.TrimPrefix(e.http.URL, "http") + "/query"
	c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: []string{"graphql-transport-ws"},
		HTTPClient: &http.Client{Transport: &http.Transport{DialContext: dialer.DialContext}}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	c.SetReadLimit(1 << 20)
	send(t, c, map[string]any{"type": "connection_init", "payload": map[string]any{}})
	if m := receive(t, c); m.Type != "connection_ack" {
		t.Fatalf("got %+v, want connection_ack", m)
	}
	send(t, c, map[string]any{"id": "1", "type": "subscribe", "payload": map[string]any{
		"query":     `subscription ($id: ID!) { imageEvents(imageId: $id) { id type data metadata } }`,
		"variables": map[string]any{"id": img.ID}}})
	eventually(t, "the subscription to start", func() bool { return e.subscribers() == 1 })

	// Far more events than the socket buffers hold, appended while the
	// client reads nothing.
	const total = 3000
	appendDitherRequests(t, e, uuid.MustParse(img.ID), total)
	eventually(t, "the slow subscription to be closed", func() bool { return e.subscribers() == 0 })

	var received int
	for {
		m := receive(t, c)
		switch m.Type {
		case "next":
			if strings.Contains(string(m.Payload), `"errors"`) {
				if !strings.Contains(string(m.Payload), "SUBSCRIBER_TOO_SLOW") {
					t.Fatalf("got %s, want SUBSCRIBER_TOO_SLOW", m.Payload)
				}
				if received >= total {
					t.Fatalf("the subscriber received all %d events and was still told it was slow", received)
				}
				if m := receive(t, c); m.Type != "complete" {
					t.Fatalf("got %s after the error, want complete", m.Type)
				}
				return
			}
			received++
		default:
			t.Fatalf("got %s %s after %d events, want next", m.Type, m.Payload, received)
		}
	}
}

// appendDitherRequests appends n dither requests to an image's stream in
// a few large appends, as a busy service would.
func appendDitherRequests(t *testing.T, e *env, imageID uuid.UUID, n int) {
	t.Helper()
	ctx := context.Background()
	state, err := e.srv.Commands().Load(ctx, imageID)
	if err != nil {
		t.Fatal(err)
	}
	for n > 0 {
		var batch []eventstore.NewEvent
		for range min(n, 500) {
			evs, err := images.RequestDither(state, images.DitherRequest{DitherID: uuid.New(),
				Options: images.DitherInput{Levels: 2, Algorithm: "FLOYD_STEINBERG"}, Now: time.Now()})
			if err != nil {
				t.Fatal(err)
			}
			for _, ev := range evs {
				typ, v, data, err := images.Marshal(ev)
				if err != nil {
					t.Fatal(err)
				}
				batch = append(batch, eventstore.NewEvent{ID: eventstore.NewEventID(), Type: typ, SchemaVersion: v, Data: data})
				state = images.Evolve(state, ev, images.EventMeta{StreamVersion: state.Version + 1})
			}
		}
		if _, err := e.srv.Store().Append(ctx, images.StreamID(imageID), eventstore.Exact(state.Version-int64(len(batch))), batch...); err != nil {
			t.Fatal(err)
		}
		n -= len(batch)
	}
}

// image(id) answers come through an in-memory cache that the log keeps
// exact: a dither completed by another process shows in the next answers
// once projected, long before the cache's answers would expire.
func TestImageCacheFollowsTheLog(t *testing.T) {
	e := start(t, server.Config{AutoDither: true, NoProcessors: true, ReadCacheTTL: time.Hour})
	img := e.mustUpload("cached.png", pngBytes(8, 8))
	const q = `query ($id: ID!) { image(id: $id) { version dithers(first: 5) { edges { node { id status } } } } }`
	type answer struct {
		Image struct {
			Version int
			Dithers struct {
				Edges []struct{ Node struct{ ID, Status string } }
			}
		}
	}
	var a answer
	eventually(t, "image(id) to come from the cache", func() bool {
		a = answer{}
		e.mustDo(q, map[string]any{"id": img.ID}, &a)
		hits, _ := e.srv.ReadCache().Stats()
		return hits > 0 && a.Image.Version == 2 && len(a.Image.Dithers.Edges) == 1
	})
	otherProcess(t, e, img.ID, a.Image.Dithers.Edges[0].Node.ID)
	eventually(t, "the completed dither in image(id)", func() bool {
		a = answer{}
		e.mustDo(q, map[string]any{"id": img.ID}, &a)
		return a.Image.Version == 3 && a.Image.Dithers.Edges[0].Node.Status == "COMPLETED"
	})
}

// A websocket holds at most graph.MaxSubscriptionsPerConnection
// subscriptions at once; one more is refused until one ends.
func TestSubscriptionsPerConnection(t *testing.T) {
	e := start(t, server.Config{NoProcessors: true})
	c := dialWS(t, e, "graphql-transport-ws")
	subscribe := func(id string) {
		send(t, c, map[string]any{"id": id, "type": "subscribe", "payload": map[string]any{"query": `subscription { ditherCompleted { id } }`}})
	}
	for i := range graph.MaxSubscriptionsPerConnection {
		subscribe(strconv.Itoa(i))
	}
	eventually(t, "every subscription to open", func() bool { return e.subscribers() == graph.MaxSubscriptionsPerConnection })
	subscribe("one-too-many")
	if m := receive(t, c); m.ID != "one-too-many" || !strings.Contains(string(m.Payload), "TOO_MANY_SUBSCRIPTIONS") {
		t.Fatalf("got %s %s %s, want the refusal of one-too-many", m.ID, m.Type, m.Payload)
	}
	send(t, c, map[string]any{"id": "0", "type": "complete"})
	eventually(t, "the completed subscription to end", func() bool { return e.subscribers() == graph.MaxSubscriptionsPerConnection-1 })
	subscribe("in-its-place")
	eventually(t, "a subscription to open in its place", func() bool { return e.subscribers() == graph.MaxSubscriptionsPerConnection })
}

// A subscription to one image completes once the image is deleted:
// imageEvents after telling of the deletion, ditherCompleted at once. A
// deleted image cannot be subscribed to.
func TestSubscriptionsEndWithTheImage(t *testing.T) {
	e := start(t, server.Config{NoProcessors: true})
	img := e.mustUpload("short-lived.png", pngBytes(4, 4))
	c := dialWS(t, e, "graphql-transport-ws")
	send(t, c, map[string]any{"id": "events", "type": "subscribe", "payload": map[string]any{
		"query": `subscription ($id: ID!) { imageEvents(imageId: $id) { type } }`, "variables": map[string]any{"id": img.ID}}})
	send(t, c, map[string]any{"id": "outcomes", "type": "subscribe", "payload": map[string]any{
		"query": ditherCompletedSub, "variables": map[string]any{"id": img.ID}}})
	eventually(t, "both subscriptions to open", func() bool { return e.subscribers() == 2 })
	e.mustDo(`mutation ($id: ID!) { deleteImage(input: {id: $id}) { deletedImageId } }`, map[string]any{"id": img.ID}, nil)
	got := map[string][]string{}
	for len(got["events"]) == 0 || got["events"][len(got["events"])-1] != "complete" || len(got["outcomes"]) == 0 {
		m := receive(t, c)
		got[m.ID] = append(got[m.ID], m.Type)
		if m.Type == "next" && m.ID == "events" && !strings.Contains(string(m.Payload), "ImageDeleted") {
			t.Fatalf("imageEvents told of %s", m.Payload)
		}
	}
	if want := []string{"next", "complete"}; !slices.Equal(got["events"], want) {
		t.Errorf("imageEvents: %v, want %v", got["events"], want)
	}
	if want := []string{"complete"}; !slices.Equal(got["outcomes"], want) {
		t.Errorf("ditherCompleted: %v, want %v", got["outcomes"], want)
	}
	send(t, c, map[string]any{"id": "late", "type": "subscribe", "payload": map[string]any{
		"query": `subscription ($id: ID!) { imageEvents(imageId: $id) { type } }`, "variables": map[string]any{"id": img.ID}}})
	if m := receive(t, c); m.ID != "late" || !strings.Contains(string(m.Payload), "IMAGE_DELETED") {
		t.Errorf("subscribing to the deleted image: %s %s %s", m.ID, m.Type, m.Payload)
	}
}

// Subscribers told of one dither's outcome share one replay of its
// image's stream: over real websockets, five subscribers cost the SQL
// statements that one does.
func TestSubscribersShareAnOutcomesReplay(t *testing.T) {
	// No processor here: the test plays it, from another process, whose
	// statements are not counted.
	e := start(t, server.Config{AutoDither: true, NoProcessors: true})
	const sub = `subscription ($id: ID) { ditherCompleted(imageId: $id) { id status } }`
	counted := http.Header{"X-Count-Queries": {"1"}}
	// statements has n counted subscribers told of a new image's dither
	// and returns the SQL statements run for them meanwhile.
	statements := func(n int) int64 {
		t.Helper()
		img := e.mustUpload("shared.png", pngBytes(8, 8))
		ditherID := img.Dithers.Edges[0].Node.ID
		conns := make([]*websocket.Conn, n)
		for i := range conns {
			conns[i] = dialWSWith(t, e, "graphql-transport-ws", "", counted)
			send(t, conns[i], map[string]any{"id": "1", "type": "subscribe", "payload": map[string]any{
				"query": sub, "variables": map[string]any{"id": img.ID}}})
		}
		eventually(t, fmt.Sprintf("%d subscriptions to open", n), func() bool { return e.subscribers() == n })
		e.queries.Store(0)
		otherProcess(t, e, img.ID, ditherID)
		for _, c := range conns {
			if d := nextCompleted(t, c); d.ID != ditherID || d.Status != "COMPLETED" {
				t.Fatalf("ditherCompleted = %+v, want %s COMPLETED", d, ditherID)
			}
		}
		run := e.queries.Load()
		for _, c := range conns {
			c.Close(websocket.StatusNormalClosure, "")
		}
		eventually(t, "the subscriptions to close", func() bool { return e.subscribers() == 0 })
		return run
	}
	one, five := statements(1), statements(5)
	t.Logf("statements: %d for one subscriber, %d for five", one, five)
	if one == 0 || five != one {
		t.Fatalf("telling 5 subscribers of an outcome ran %d SQL statements, telling 1 ran %d; want the same, more than 0", five, one)
	}
}
