package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/imageservice/imageservice/eventstore"
)

func testAppendAndReadStream(t *testing.T, b Backend) {
	s := b.Store
	e1, e2, e3 := ev("A", 1), ev("B", 2), ev("C", 3)
	e1.Metadata = eventstore.Metadata{CorrelationID: "c", CausationID: "k", Actor: "me", IdempotencyKey: "idem", TraceParent: "00-abc-def-01"}
	res := mustAppend(t, s, "s-1", eventstore.NoStream, e1, e2)
	if res.StreamVersion != 2 || len(res.Positions) != 2 || res.Duplicate {
		t.Fatalf("first append: %+v", res)
	}
	if !res.Positions[0].Less(res.Positions[1]) {
		t.Fatalf("positions out of order: %v", res.Positions)
	}
	res = mustAppend(t, s, "s-1", eventstore.Exact(2), e3)
	if res.StreamVersion != 3 {
		t.Fatalf("second append version = %d, want 3", res.StreamVersion)
	}
	mustAppend(t, s, "other", eventstore.Any, ev("X", 9))

	got, err := s.ReadStream(ctx(t), "s-1", 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("ReadStream returned %d events, want 3", len(got))
	}
	for i, want := range []eventstore.NewEvent{e1, e2, e3} {
		g := got[i]
		if g.ID != want.ID || g.Type != want.Type || g.StreamVersion != int64(i+1) || g.StreamID != "s-1" ||
			g.SchemaVersion != 1 || g.Metadata != want.Metadata || g.RecordedAt.IsZero() {
			t.Errorf("event %d = %+v, want %+v", i, g, want)
		}
		if !jsonEqual(g.Data, want.Data) {
			t.Errorf("event %d data = %s, want %s", i, g.Data, want.Data)
		}
	}
	from2, err := s.ReadStream(ctx(t), "s-1", 2, 100)
	if err != nil || len(from2) != 1 || from2[0].ID != e3.ID {
		t.Fatalf("ReadStream after 2 = %v, %v", from2, err)
	}
	none, err := s.ReadStream(ctx(t), "missing", 0, 100)
	if err != nil || len(none) != 0 {
		t.Fatalf("ReadStream(missing) = %v, %v", none, err)
	}
}

func testExpectedVersions(t *testing.T, b Backend) {
	s := b.Store
	mustAppend(t, s, "v", eventstore.Any, ev("A", 1))
	mustAppend(t, s, "v", eventstore.Any, ev("A", 2))
	wrong := []struct {
		expected eventstore.ExpectedVersion
		stream   string
		actual   int64
	}{
		{eventstore.NoStream, "v", 2},
		{eventstore.Exact(1), "v", 2},
		{eventstore.Exact(3), "v", 2},
		{eventstore.Exact(1), "absent", 0},
	}
	for _, w := range wrong {
		_, err := s.Append(ctx(t), w.stream, w.expected, ev("A", 0))
		var ve *eventstore.VersionError
		if !errors.Is(err, eventstore.ErrWrongVersion) || !errors.As(err, &ve) || ve.Actual != w.actual {
			t.Errorf("Append(%s, %s) error = %v, want version error with actual %d", w.stream, w.expected, err, w.actual)
		}
	}
	mustAppend(t, s, "v", eventstore.Exact(2), ev("A", 3))
	if n := len(readAll(t, s)); n != 3 {
		t.Fatalf("log has %d events, want 3", n)
	}
}

func testIdempotentRetry(t *testing.T, b Backend) {
	s := b.Store
	batch := []eventstore.NewEvent{ev("A", 1), ev("B", 2)}
	first := mustAppend(t, s, "idem", eventstore.NoStream, batch...)
	for _, expected := range []eventstore.ExpectedVersion{eventstore.NoStream, eventstore.Any, eventstore.Exact(0)} {
		again := mustAppend(t, s, "idem", expected, batch...)
		if !again.Duplicate || again.StreamVersion != first.StreamVersion ||
			len(again.Positions) != 2 || again.Positions[0] != first.Positions[0] || again.Positions[1] != first.Positions[1] {
			t.Fatalf("retry with %s = %+v, want duplicate of %+v", expected, again, first)
		}
	}
	// Data that is equal as JSON but spelled differently is the same content.
	respelled := batch[0]
	respelled.Data = json.RawMessage(`{ "n":1 }`)
	if res := mustAppend(t, s, "idem", eventstore.Any, respelled, batch[1]); !res.Duplicate {
		t.Fatalf("respelled retry was not a duplicate: %+v", res)
	}
	if n := len(readAll(t, s)); n != 2 {
		t.Fatalf("log has %d events after retries, want 2", n)
	}
}

func testConflictingRetry(t *testing.T, b Backend) {
	s := b.Store
	e1, e2 := ev("A", 1), ev("B", 2)
	mustAppend(t, s, "c", eventstore.NoStream, e1, e2)
	changed := e1
	changed.Data = json.RawMessage(`{"n": 100}`)
	otherType := e1
	otherType.Type = "Z"
	otherMeta := e1
	otherMeta.Metadata.Actor = "someone else"
	attempts := []struct {
		name   string
		stream string
		events []eventstore.NewEvent
	}{
		{"other data", "c", []eventstore.NewEvent{changed, e2}},
		{"other type", "c", []eventstore.NewEvent{otherType, e2}},
		{"other metadata", "c", []eventstore.NewEvent{otherMeta, e2}},
		{"other stream", "d", []eventstore.NewEvent{e1, e2}},
		{"other order", "c", []eventstore.NewEvent{e2, e1}},
		{"partial overlap", "c", []eventstore.NewEvent{e1, ev("C", 3)}},
	}
	for _, a := range attempts {
		_, err := s.Append(ctx(t), a.stream, eventstore.Any, a.events...)
		if !errors.Is(err, eventstore.ErrDuplicateEventID) {
			t.Errorf("%s: error = %v, want ErrDuplicateEventID", a.name, err)
		}
	}
	if n := len(readAll(t, s)); n != 2 {
		t.Fatalf("log has %d events, want 2", n)
	}
}

// testConcurrentIdenticalAppends races the same append from many
// connections: exactly one writes, every other reports a duplicate.
func testConcurrentIdenticalAppends(t *testing.T, b Backend) {
	s := b.Store
	for _, expected := range []eventstore.ExpectedVersion{eventstore.NoStream, eventstore.Any} {
		stream := "race-" + expected.String()
		batch := []eventstore.NewEvent{ev("A", 1), ev("B", 2)}
		var wg sync.WaitGroup
		results := make([]eventstore.AppendResult, 8)
		errs := make([]error, 8)
		for i := range results {
			wg.Go(func() { results[i], errs[i] = s.Append(ctx(t), stream, expected, batch...) })
		}
		wg.Wait()
		writers := 0
		for i, err := range errs {
			if err != nil {
				t.Fatalf("append %d: %v", i, err)
			}
			if !results[i].Duplicate {
				writers++
			}
			if results[i].StreamVersion != 2 {
				t.Fatalf("append %d: version %d", i, results[i].StreamVersion)
			}
		}
		if writers != 1 {
			t.Fatalf("%d appends wrote, want exactly 1", writers)
		}
	}
	if n := len(readAll(t, s)); n != 4 {
		t.Fatalf("log has %d events, want 4", n)
	}
}

// testBusyStreamAny has many writers append to one stream with Any at
// once: every append succeeds (a store resolves races among them by
// itself), and the stream holds every event once, its versions 1 to N.
func testBusyStreamAny(t *testing.T, b Backend) {
	s := b.Store
	const writers, each = 32, 20
	var wg sync.WaitGroup
	errs := make([]error, writers)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				if _, err := s.Append(ctx(t), "busy", eventstore.Any, ev("A", w*each+i)); err != nil {
					errs[w] = err
					return
				}
			}
		})
	}
	wg.Wait()
	for w, err := range errs {
		if err != nil {
			t.Fatalf("writer %d: %v", w, err)
		}
	}
	got, err := s.ReadStream(ctx(t), "busy", 0, writers*each+1)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != writers*each {
		t.Fatalf("the stream holds %d events, want %d", len(got), writers*each)
	}
	for i, e := range got {
		if e.StreamVersion != int64(i+1) {
			t.Fatalf("event %d has version %d", i, e.StreamVersion)
		}
	}
}

func testBadInput(t *testing.T, b Backend) {
	s := b.Store
	withData := func(data string) eventstore.NewEvent { e := ev("A", 0); e.Data = json.RawMessage(data); return e }
	noType := ev("", 0)
	noID := ev("A", 0)
	noID.ID = uuid.Nil
	same := ev("A", 0)
	big := withData(`{"s": "` + strings.Repeat("x", eventstore.MaxEventSize) + `"}`)
	bigMeta := ev("A", 0)
	bigMeta.Data = json.RawMessage(`{"s": "` + strings.Repeat("x", eventstore.MaxEventSize-100) + `"}`)
	bigMeta.Metadata.TraceParent = strings.Repeat("t", 200)
	nulMeta := ev("A", 0)
	nulMeta.Metadata.IdempotencyKey = "a\x00b"
	cases := []struct {
		name   string
		stream string
		events []eventstore.NewEvent
	}{
		{"empty stream id", "", []eventstore.NewEvent{ev("A", 0)}},
		{"no events", "s", nil},
		{"missing type", "s", []eventstore.NewEvent{noType}},
		{"missing id", "s", []eventstore.NewEvent{noID}},
		{"id twice", "s", []eventstore.NewEvent{same, same}},
		{"array data", "s", []eventstore.NewEvent{withData(`[1, 2]`)}},
		{"string data", "s", []eventstore.NewEvent{withData(`"text"`)}},
		{"invalid JSON", "s", []eventstore.NewEvent{withData(`{"a": `)}},
		{"empty data", "s", []eventstore.NewEvent{withData(``)}},
		{"over 1 MiB", "s", []eventstore.NewEvent{big}},
		{"over 1 MiB with metadata", "s", []eventstore.NewEvent{bigMeta}},
		{"one bad among good", "s", []eventstore.NewEvent{ev("A", 1), withData(`null`)}},
		{"NUL in data", "s", []eventstore.NewEvent{withData(`{"s": "a\u0000b"}`)}},
		{"NUL after an escaped backslash", "s", []eventstore.NewEvent{withData(`{"s": "a\\\u0000b"}`)}},
		{"NUL in metadata", "s", []eventstore.NewEvent{nulMeta}},
	}
	for _, c := range cases {
		_, err := s.Append(ctx(t), c.stream, eventstore.Any, c.events...)
		if !errors.Is(err, eventstore.ErrInvalidEvent) {
			t.Errorf("%s: error = %v, want ErrInvalidEvent", c.name, err)
		}
	}
	if n := len(readAll(t, s)); n != 0 {
		t.Fatalf("bad input wrote %d events", n)
	}
	// The text \u0000 (an escaped backslash, then "u0000") is no NUL.
	if _, err := s.Append(ctx(t), "s", eventstore.Any, withData(`{"s": "a\\u0000b"}`)); err != nil {
		t.Fatalf("the text \\u0000: %v", err)
	}
}

func testCancelledContext(t *testing.T, b Backend) {
	s := b.Store
	c, cancel := context.WithCancel(ctx(t))
	cancel()
	if _, err := s.Append(c, "s", eventstore.Any, ev("A", 0)); err == nil {
		t.Error("Append with a cancelled context succeeded")
	}
	if _, err := s.ReadAll(c, eventstore.Position{}, 10); err == nil {
		t.Error("ReadAll with a cancelled context succeeded")
	}
	if _, err := s.ReadStream(c, "s", 0, 10); err == nil {
		t.Error("ReadStream with a cancelled context succeeded")
	}
	err := eventstore.Follow(c, s, eventstore.Position{}, eventstore.ReadOptions{},
		func(context.Context, []eventstore.Event, eventstore.Position) error { return nil })
	if err == nil {
		t.Error("Follow with a cancelled context returned nil")
	}
}

func testReadAllInBatches(t *testing.T, b Backend) {
	s := b.Store
	var want []uuid.UUID
	for i := range 25 {
		e := ev("A", i)
		want = append(want, e.ID)
		mustAppend(t, s, "stream-"+string(rune('a'+i%3)), eventstore.Any, e)
	}
	readAll(t, s) // settle: every event is readable
	var got []uuid.UUID
	var after eventstore.Position
	for len(got) < len(want) {
		batch, err := s.ReadAll(ctx(t), after, 7)
		if err != nil {
			t.Fatal(err)
		}
		if len(batch) > 7 || len(batch) == 0 {
			t.Fatalf("batch of %d, limit 7", len(batch))
		}
		for _, e := range batch {
			if !after.Less(e.Position) {
				t.Fatalf("position %s not after %s", e.Position, after)
			}
			after = e.Position
			got = append(got, e.ID)
		}
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("event %d out of order", i)
		}
	}
	head, at, err := s.Head(ctx(t))
	if err != nil || head.Less(after) || at.IsZero() {
		t.Fatalf("Head = %s, %v, %v; want at least %s", head, at, err, after)
	}
}

func jsonEqual(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return string(xa) == string(ya)
}

// AppendLog records the appends an eventstore.AppendObserver is told of.
type AppendLog struct {
	mu   sync.Mutex
	seen []AppendSeen
}

// AppendSeen is one observed append.
type AppendSeen struct {
	Events int
	Err    error
}

// Observe is an eventstore.AppendObserver that records each append.
func (l *AppendLog) Observe(events int, d time.Duration, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if d < 0 {
		err = fmt.Errorf("negative duration %s (error %v)", d, err)
	}
	l.seen = append(l.seen, AppendSeen{Events: events, Err: err})
}

// Seen returns the appends observed so far.
func (l *AppendLog) Seen() []AppendSeen {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.seen)
}

// testObserveAppend: the observer is told of every append, in a
// transaction or not, with its number of events and its outcome.
func testObserveAppend(t *testing.T, b Backend) {
	if b.Appends == nil {
		t.Skip("the backend has no append observer")
	}
	c := ctx(t)
	if _, err := b.Store.Append(c, "observed", eventstore.NoStream, ev("A", 1), ev("B", 2)); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Store.Append(c, "observed", eventstore.NoStream, ev("C", 3)); !errors.Is(err, eventstore.ErrWrongVersion) {
		t.Fatalf("append to an existing stream with NoStream: %v", err)
	}
	tx, err := b.Begin(c)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Append(c, "observed", eventstore.Exact(2), ev("D", 4)); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(c); err != nil {
		t.Fatal(err)
	}
	seen := b.Appends.Seen()
	if len(seen) != 3 || seen[0] != (AppendSeen{Events: 2}) || seen[1].Events != 1 ||
		!errors.Is(seen[1].Err, eventstore.ErrWrongVersion) || seen[2] != (AppendSeen{Events: 1}) {
		t.Fatalf("observed %+v, want 2 events ok, 1 with ErrWrongVersion, 1 ok", seen)
	}
}
