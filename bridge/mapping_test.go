package bridge

import (
	"encoding/json"
	"io"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/imageservice/imageservice/eventstore"
	"github.com/imageservice/imageservice/images"
)

var (
	testImage  = uuid.MustParse("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b")
	testDither = uuid.MustParse("0190a1b2-c3d4-7e5f-8a9b-000000000001")
	testEvent  = uuid.MustParse("0190a1b2-c3d4-7e5f-8a9b-00000000e0e0")
	testTime   = time.Date(2026, 11, 30, 1, 2, 3, 456000000, time.UTC)
)

func testMapper() Mapper {
	return Mapper{PublicURL: "https://img.example", Source: "/test",
		Topics: Topics{Image: "img", Dither: "dit", Events: "ev"}}
}

func event(t *testing.T, e images.Event, version int64) eventstore.Event {
	t.Helper()
	typ, sv, data, err := images.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	return eventstore.Event{ID: testEvent, StreamID: images.StreamID(testImage), StreamVersion: version,
		Type: typ, SchemaVersion: sv, Data: data, RecordedAt: testTime,
		Position: eventstore.Position{TransactionID: 7, Global: 9}}
}

// stateWith is an image with one dither in the given status, 4 levels.
func stateWith(status images.DitherStatus) images.Image {
	return images.Image{ID: testImage, Status: images.StatusActive, Dithers: []images.Dither{
		{ID: testDither, Status: status, Options: images.DitherOptions{Levels: 4}}}}
}

// want is one expected old-format message.
type want struct {
	topic, msgType, id, body string
}

func TestMapOldFormat(t *testing.T) {
	id := testImage.String()
	cases := []struct {
		name   string
		event  images.Event
		before images.Image
		want   []want
	}{
		{"upload", images.ImageUploaded{ImageID: testImage, Filename: "cat.png", SHA256: "abc"}, images.Image{},
			[]want{{"img", TypeImageUploaded, testEvent.String(),
				`{"uuid":"` + id + `","url":"https://img.example/blobs/abc","filename":"cat.png"}`}}},
		{"dither completed", images.DitherCompleted{DitherID: testDither, ResultKey: "def"}, stateWith(images.DitherStatusPending),
			[]want{{"dit", TypeDitherUploaded, testEvent.String(),
				`{"uuid":"` + id + `","url_dither":"https://img.example/blobs/def","dither_id":"` + testDither.String() + `","channels":4}`}}},
		{"dither completed, request unknown", images.DitherCompleted{DitherID: testDither, ResultKey: "def"}, images.Image{},
			[]want{{"dit", TypeDitherUploaded, testEvent.String(),
				`{"uuid":"` + id + `","url_dither":"https://img.example/blobs/def","dither_id":"` + testDither.String() + `"}`}}},
		{"delete with a completed dither", images.ImageDeleted{DeletedAt: testTime}, stateWith(images.DitherStatusCompleted),
			[]want{
				{"dit", TypeDitherDeleted, testEvent.String(), `{"uuid":"` + id + `","dither_ids":["` + testDither.String() + `"]}`},
				{"img", TypeImageDeleted, testEvent.String() + "/IMAGE_DELETED", `{"uuid":"` + id + `"}`},
			}},
		{"delete without completed dithers", images.ImageDeleted{DeletedAt: testTime}, stateWith(images.DitherStatusFailed),
			[]want{{"img", TypeImageDeleted, testEvent.String(), `{"uuid":"` + id + `"}`}}},
		{"dither requested", images.DitherRequested{DitherID: testDither}, images.Image{}, nil},
		{"dither failed", images.DitherFailed{DitherID: testDither, Reason: "x"}, images.Image{}, nil},
		{"image synced", images.ImageSynced{SecureURL: "https://res.cloudinary.com/x.png"}, images.Image{}, nil},
		{"dither synced", images.DitherSynced{DitherID: testDither, SecureURL: "https://res.cloudinary.com/y.png"}, images.Image{}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := event(t, c.event, 2)
			msgs, err := testMapper().Map(e, c.before)
			if err != nil {
				t.Fatal(err)
			}
			if len(msgs) != len(c.want)+1 {
				t.Fatalf("got %d messages, want %d old ones and the event", len(msgs), len(c.want))
			}
			for i, w := range c.want {
				checkOld(t, msgs[i], w)
			}
			checkStructured(t, msgs[len(msgs)-1], e, len(c.want) == 0)
		})
	}
}

func checkOld(t *testing.T, m Message, w want) {
	t.Helper()
	if m.Topic != w.topic || m.ID != w.id || m.Key != testImage.String() || string(m.Body) != w.body {
		t.Errorf("message %+v\nwant topic %s, id %s, body %s", m, w.topic, w.id, w.body)
	}
	wantHeaders := []Header{
		{"message_type", w.msgType}, {"version", "1.0.0"}, {"ce_specversion", "1.0"},
		{"ce_id", testEvent.String()}, {"ce_type", "imageservice.legacy." + w.msgType},
		{"ce_source", "/test"}, {"ce_time", "2026-11-30T01:02:03.456Z"},
		{"ce_subject", "image-" + testImage.String()}, {"content-type", "application/json"},
	}
	if len(m.Headers) != len(wantHeaders) {
		t.Fatalf("headers %v, want %v", m.Headers, wantHeaders)
	}
	for i := range wantHeaders {
		if m.Headers[i] != wantHeaders[i] {
			t.Errorf("header %d is %v, want %v", i, m.Headers[i], wantHeaders[i])
		}
	}
}

func checkStructured(t *testing.T, m Message, e eventstore.Event, first bool) {
	t.Helper()
	wantID := testEvent.String() + "/events"
	if first {
		wantID = testEvent.String()
	}
	if m.Topic != "ev" || m.ID != wantID || m.Key != testImage.String() ||
		m.Header("content-type") != "application/cloudevents+json" || len(m.Headers) != 1 {
		t.Errorf("events message %+v", m)
	}
	var ce map[string]any
	if err := json.Unmarshal(m.Body, &ce); err != nil {
		t.Fatal(err)
	}
	wantFields := map[string]any{
		"specversion": "1.0", "id": testEvent.String(), "source": "/test", "type": "imageservice." + e.Type,
		"subject": e.StreamID, "time": "2026-11-30T01:02:03.456Z", "datacontenttype": "application/json",
		"schemaversion": float64(e.SchemaVersion), "streamversion": float64(2), "position": "7/9",
	}
	for k, v := range wantFields {
		if ce[k] != v {
			t.Errorf("cloud event %s = %v, want %v", k, ce[k], v)
		}
	}
	data, _ := json.Marshal(ce["data"])
	var got, stored map[string]any
	_ = json.Unmarshal(data, &got)
	_ = json.Unmarshal(e.Data, &stored)
	if len(got) != len(stored) {
		t.Errorf("cloud event data %s, want %s", data, e.Data)
	}
}

func TestMapUnreadableEventStillForwarded(t *testing.T) {
	e := event(t, images.ImageUploaded{ImageID: testImage}, 1)
	e.SchemaVersion = 99
	msgs, err := testMapper().Map(e, images.Image{})
	if err == nil || !strings.Contains(err.Error(), "schema version") {
		t.Errorf("err = %v, want an unknown schema version", err)
	}
	if len(msgs) != 1 || msgs[0].Topic != "ev" || msgs[0].ID != testEvent.String() {
		t.Errorf("messages %+v, want the events message alone", msgs)
	}
}

// Only images' events are published: the API keys' hold key hashes.
func TestMapOtherStreams(t *testing.T) {
	e := eventstore.Event{ID: testEvent, StreamID: "apikey-1", StreamVersion: 1, Type: "ApiKeyCreated",
		SchemaVersion: 1, Data: []byte(`{"a":1}`), RecordedAt: testTime}
	msgs, err := Mapper{}.Map(e, images.Image{})
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 0 {
		t.Errorf("messages %+v of an API key's event, want none", msgs)
	}
}

func TestTopicsAll(t *testing.T) {
	for _, c := range []struct {
		t    Topics
		want string
	}{
		{Topics{"a", "b", "c"}, "a b c"},
		{Topics{"a", "a", "c"}, "a c"},
		{Topics{"a", "b", "a"}, "a b"},
		{Topics{"a", "b", "b"}, "a b"},
	} {
		if got := strings.Join(c.t.All(), " "); got != c.want {
			t.Errorf("%v.All() = %s, want %s", c.t, got, c.want)
		}
	}
}

func TestMapTraceContext(t *testing.T) {
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	e := event(t, images.ImageUploaded{ImageID: testImage, Filename: "cat.png", SHA256: "abc"}, 1)
	e.Metadata.TraceParent = tp
	msgs, err := testMapper().Map(e, images.Image{})
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 2 {
		t.Fatalf("got %d messages, want the old one and the event", len(msgs))
	}
	old := msgs[0]
	wantHeaders := []Header{
		{"message_type", TypeImageUploaded}, {"version", "1.0.0"}, {"ce_specversion", "1.0"},
		{"ce_id", testEvent.String()}, {"ce_type", "imageservice.legacy." + TypeImageUploaded},
		{"ce_source", "/test"}, {"ce_time", "2026-11-30T01:02:03.456Z"},
		{"ce_subject", "image-" + testImage.String()}, {"ce_traceparent", tp}, {"content-type", "application/json"},
	}
	if !slices.Equal(old.Headers, wantHeaders) {
		t.Errorf("headers\n%v\nwant\n%v", old.Headers, wantHeaders)
	}
	var ce map[string]any
	if err := json.Unmarshal(msgs[1].Body, &ce); err != nil {
		t.Fatal(err)
	}
	if ce["traceparent"] != tp {
		t.Errorf("cloud event traceparent = %v, want %s", ce["traceparent"], tp)
	}
	if len(msgs[1].Headers) != 1 {
		t.Errorf("events message headers %v, want content-type alone (the trace context is in the body)", msgs[1].Headers)
	}
	for _, m := range msgs {
		if m.TraceParent != tp {
			t.Errorf("message %s has TraceParent %q, want the event's", m.ID, m.TraceParent)
		}
	}

	// A malformed value recorded before tracing is not passed on.
	e.Metadata.TraceParent = "not-a-trace-parent"
	msgs, err = testMapper().Map(e, images.Image{})
	if err != nil {
		t.Fatal(err)
	}
	if msgs[0].Header("ce_traceparent") != "" || msgs[0].TraceParent != "" || strings.Contains(string(msgs[1].Body), "traceparent") {
		t.Errorf("a malformed traceparent was passed on: %+v", msgs)
	}
}

// TestCloudEventJSONIsMarshal: the hand-written envelope is byte for byte
// what encoding/json writes, escapes and odd data included.
func TestCloudEventJSONIsMarshal(t *testing.T) {
	base := eventstore.Event{ID: testEvent, StreamID: images.StreamID(testImage), StreamVersion: 12,
		Type: images.TypeImageUploaded, SchemaVersion: 3, Data: []byte(`{"a": 1, "b": [true, null, "x"]}`),
		RecordedAt: testTime, Position: eventstore.Position{TransactionID: 1 << 40, Global: 77}}
	cases := map[string]func(e *eventstore.Event, m *Mapper){
		"plain":      func(*eventstore.Event, *Mapper) {},
		"empty data": func(e *eventstore.Event, _ *Mapper) { e.Data = nil },
		"metadata": func(e *eventstore.Event, _ *Mapper) {
			e.Metadata = eventstore.Metadata{CorrelationID: "c", CausationID: "d", TraceParent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}
		},
		"html in data":    func(e *eventstore.Event, _ *Mapper) { e.Data = []byte(`{"f": "<b> & </b>"}`) },
		"line separators": func(e *eventstore.Event, _ *Mapper) { e.Data = []byte("{\"f\": \"a\u2028b\u2029c\"}") },
		"unicode data": func(e *eventstore.Event, _ *Mapper) {
			e.Data = []byte(`{"f": "ünïcode \u00e9 \ud83d\ude00 … €"}`)
		},
		"escapes in data": func(e *eventstore.Event, _ *Mapper) {
			e.Data = []byte("{\"f\\\" \": \"a\\\"b \\\\\", \"g\":\t[1,\n2 , {}]\r}")
		},
		"nested data": func(e *eventstore.Event, _ *Mapper) {
			e.Data = []byte(`{ "a" : { "b" : [ 1 , "x y" , null ] } , "c" : "  " }`)
		},
		"invalid data":  func(e *eventstore.Event, _ *Mapper) { e.Data = []byte(`{"f": `) },
		"odd stream":    func(e *eventstore.Event, _ *Mapper) { e.StreamID = "other-\"quoted\"\n<tab>\t\x01é" },
		"odd type":      func(e *eventstore.Event, _ *Mapper) { e.Type = "Type&<Odd>\u2028" },
		"ampersand":     func(e *eventstore.Event, m *Mapper) { m.Source = "/src?a=1&b=2" },
		"backslash":     func(e *eventstore.Event, m *Mapper) { m.Source = `/src\2` },
		"greater than":  func(e *eventstore.Event, _ *Mapper) { e.Metadata.CausationID = "a>b" },
		"invalid utf-8": func(e *eventstore.Event, _ *Mapper) { e.Metadata.CorrelationID = "bad \xff\xfe utf-8" },
		"no position":   func(e *eventstore.Event, _ *Mapper) { e.Position = eventstore.Position{} },
	}
	for name, change := range cases {
		t.Run(name, func(t *testing.T) {
			e, m := base, testMapper()
			change(&e, &m)
			m = m.withDefaults()
			ev := mappedEvent{Event: e, id: e.ID.String(), key: "k", time: e.RecordedAt.Format(time.RFC3339Nano), traceParent: eventTraceParent(e)}
			want := m.cloudEventMarshal(ev)
			if got := m.cloudEventJSON(ev); string(got) != string(want) {
				t.Errorf("envelope\n%s\nwant what json.Marshal writes\n%s", got, want)
			}
			if !json.Valid(e.Data) {
				return
			}
			ev.validData = true // data that was decoded: compacted without another check
			if got := m.cloudEventJSON(ev); string(got) != string(want) {
				t.Errorf("envelope of decoded data\n%s\nwant what json.Marshal writes\n%s", got, want)
			}
		})
	}
}

// TestOldBodiesAreMarshal: the hand-written old-format bodies are byte for
// byte what encoding/json writes.
func TestOldBodiesAreMarshal(t *testing.T) {
	odd := []string{"", "plain", "cat <&> dog.png", "quote\" back\\slash", "tab\tnew\nline", "é ü \u2028 \xff", "\x01"}
	for _, str := range odd {
		for _, body := range []jsonBody{
			imageUploadedBody{UUID: str, URL: "https://x/blobs/" + str, Filename: str},
			imageDeletedBody{UUID: str},
			ditherUploadedBody{UUID: str, URLDither: str, DitherID: str, Channels: len(str)},
			ditherUploadedBody{UUID: str},
			ditherDeletedBody{UUID: str, DitherIDs: []string{str, "b"}},
			ditherDeletedBody{UUID: str, DitherIDs: []string{}},
			ditherDeletedBody{UUID: str},
		} {
			want, err := json.Marshal(body)
			if err != nil {
				t.Fatal(err)
			}
			if got := body.appendJSON(nil); string(got) != string(want) {
				t.Errorf("%T %q:\n%s\nwant\n%s", body, str, got, want)
			}
		}
	}
}

// TestBatchMessagesAreMapsAndIndependent: a batch's messages, whose bodies
// and headers share arrays, are what Map returns for each event, and
// appending to one message's body or headers changes no other message.
// The batch holds bodies larger than a shared array, one of a stream
// that is not an image's (mapped to nothing), and an image stream id in
// upper case. After a
// reset, mapping the batch again reuses the arrays.
func TestBatchMessagesAreMapsAndIndependent(t *testing.T) {
	events := batchEvents(t, 40)
	big := images.ImageUploaded{ImageID: testImage, Filename: strings.Repeat("x", 2*byteChunk), SHA256: "abc"}
	large := event(t, big, 1)
	large.StreamID = "other-stream"
	upper := event(t, big, 1)
	upper.StreamID = images.StreamPrefix + strings.ToUpper(testImage.String())
	upper.ID = testDither
	events = append(events[:30], append([]eventstore.Event{large, upper}, events[30:]...)...)

	br := &Bridge{Mapper: testMapper(), Sink: &recordingSink{},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	buf := new(buffers)
	if err := br.messages(t.Context(), buf, events); err != nil {
		t.Fatal(err)
	}
	got := buf.msgs
	var want []Message
	states := map[string]images.Image{}
	for _, e := range events {
		msgs, _ := testMapper().Map(e, states[e.StreamID])
		want = append(want, msgs...)
		if d, err := images.Unmarshal(e.Type, e.SchemaVersion, e.Data); err == nil {
			states[e.StreamID] = images.Evolve(states[e.StreamID], d, images.EventMeta{EventID: e.ID, StreamVersion: e.StreamVersion, RecordedAt: e.RecordedAt})
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("batch messages differ from Map's")
	}
	for _, m := range got {
		if strings.HasPrefix(m.ID, upper.ID.String()) && m.Key != testImage.String() {
			t.Fatalf("message %s of an upper-case stream id: key %q, want the canonical uuid", m.ID, m.Key)
		}
	}
	for i := range got {
		got[i].Body = append(got[i].Body, "garbage"...)
		got[i].Headers = append(got[i].Headers, Header{"x", "y"})
		for j := range got {
			if j == i {
				continue
			}
			if !reflect.DeepEqual(got[j], want[j]) {
				t.Fatalf("appending to message %d changed message %d: %s", i, j, got[j].Body)
			}
		}
		got[i] = want[i]
	}

	arrays, first := len(buf.bytes.arrays), &buf.bytes.arrays[0][0]
	buf.reset()
	br.states = nil
	if err := br.messages(t.Context(), buf, events); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(buf.msgs, want) {
		t.Fatalf("batch messages mapped again into reused buffers differ from Map's")
	}
	if len(buf.bytes.arrays) != arrays || &buf.msgs[0].Body[0] != first {
		t.Fatalf("mapping again used %d arrays (%d before), first body not in the first array: %t",
			len(buf.bytes.arrays), arrays, &buf.msgs[0].Body[0] != first)
	}
}
