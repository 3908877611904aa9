package bridge

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/imageservice/imageservice/eventstore"
	"github.com/imageservice/imageservice/images"
)

// BenchmarkMapBatch measures mapping one batch of 500 events (upload,
// dither requested, dither completed per image, as the log stores them:
// JSON as PostgreSQL returns jsonb) to their messages, the bridge's own
// work between reading and publishing, with the buffers of an earlier
// batch, as the bridge does once a batch is published.
func BenchmarkMapBatch(b *testing.B) {
	events := batchEvents(b, 167)[:500]
	br := &Bridge{Mapper: Mapper{PublicURL: "https://img.example", Source: "/bench"}}
	buf := new(buffers)
	b.ReportAllocs()
	for b.Loop() {
		br.states = nil
		buf.reset() // as after a publish
		if err := br.messages(context.Background(), buf, events); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(events)), "ns/event")
}

// batchEvents returns the log of n images with three events each
// (upload, dither requested, dither completed), in order.
func batchEvents(tb testing.TB, n int) []eventstore.Event {
	var events []eventstore.Event
	at := time.Date(2026, 11, 30, 1, 2, 3, 456789000, time.UTC)
	for i := range n {
		id, dither := uuid.New(), uuid.New()
		for v, e := range []images.Event{
			images.ImageUploaded{ImageID: id, Filename: fmt.Sprintf("b%d.png", i), ContentType: "image/png",
				ByteSize: 123456, Width: 640, Height: 480, SHA256: fmt.Sprintf("%064x", i), UploadedAt: at},
			images.DitherRequested{DitherID: dither, DitherOptions: images.DitherOptions{Levels: 2,
				Algorithm: "floyd-steinberg", Strength: 1, ColorSpace: images.ColorSpaceLinear}, RequestedAt: at},
			images.DitherCompleted{DitherID: dither, ResultKey: fmt.Sprintf("%064x", i+1<<40), ByteSize: 4567,
				Width: 640, Height: 480, Colours: 8, DurationMs: 12, CompletedAt: at},
		} {
			typ, sv, data, err := images.Marshal(e)
			if err != nil {
				tb.Fatal(err)
			}
			events = append(events, eventstore.Event{ID: eventstore.NewEventID(), StreamID: images.StreamID(id),
				StreamVersion: int64(v + 1), Type: typ, SchemaVersion: sv, Data: jsonbText(data), RecordedAt: at,
				Metadata: eventstore.Metadata{CorrelationID: uuid.NewString(), Actor: "api-key:1"},
				Position: eventstore.Position{TransactionID: uint64(1000 + i), Global: int64(len(events) + 1)}})
		}
	}
	return events
}

// jsonbText writes compact JSON as PostgreSQL's jsonb output does: a
// space after each colon and comma outside strings.
func jsonbText(data []byte) []byte {
	var out []byte
	in := false
	for i := 0; i < len(data); i++ {
		c := data[i]
		out = append(out, c)
		switch {
		case in && c == '\\':
			i++
			out = append(out, data[i])
		case c == '"':
			in = !in
		case !in && (c == ':' || c == ','):
			out = append(out, ' ')
		}
	}
	return out
}
