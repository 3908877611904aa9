package compat_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/imageservice/imageservice/commands"
	"github.com/imageservice/imageservice/compat"
	"github.com/imageservice/imageservice/eventstore"
	"github.com/imageservice/imageservice/images"
	"github.com/imageservice/imageservice/server"
)

// During a rolling deploy an image may hold an event of a newer build.
// Over HTTP, the old APIs answer every request that replays such an
// image (delete, dither, get) with 503, the code SERVICE_UNAVAILABLE that
// GraphQL uses, a message that says why and a Retry-After, and append
// nothing, rather than decide without that event.
func TestImageWithNewerEventsIsUnavailable(t *testing.T) {
	e := start(t, server.Config{})
	up, di := e.main+"/compat/upload", e.main+"/compat/dither"
	img := uploadPNG(t, up) // no automatic dither: its stream is the upload alone
	newer := e.appendToUpload(img.UUID, images.ImageDeletedVersion+1, `{}`)
	before := e.eventCount()

	for _, c := range []struct{ method, url string }{
		{"DELETE", up + "/images/" + img.UUID}, {"DELETE", e.upload + "/images/" + img.UUID},
		{"POST", di + "/images/" + img.UUID + "/4"}, {"POST", e.dither + "/images/" + img.UUID + "/4"},
		{"GET", up + "/images/" + img.UUID}, {"GET", di + "/images/" + img.UUID},
	} {
		req, err := http.NewRequest(c.method, c.url, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var body apiError
		_ = json.Unmarshal(raw, &body)
		if resp.StatusCode != http.StatusServiceUnavailable || body.Error.Code != compat.CodeServiceUnavailable ||
			body.Error.Message != commands.ErrNewerEvents.Error() || resp.Header.Get("Retry-After") == "" ||
			!strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
			t.Errorf("%s %s = %d (Retry-After %q) %s, want 503 %s with Retry-After saying %q",
				c.method, c.url, resp.StatusCode, resp.Header.Get("Retry-After"), raw, compat.CodeServiceUnavailable, commands.ErrNewerEvents)
		}
	}

	if after := e.eventCount(); after != before {
		t.Errorf("the refused requests appended %d events", after-before)
	}
	events, err := e.srv.Store().ReadStream(context.Background(), images.StreamID(uuid.MustParse(img.UUID)), 0, 100)
	if err != nil || len(events) != 2 || events[1].ID != newer.ID {
		t.Fatalf("stream after the refused requests: %d events (%v), want the upload and the newer event", len(events), err)
	}
}

// appendToUpload appends an ImageDeleted event of the schema version with
// the data to the stream of an image whose only event is its upload, as a
// newer build of the service (or a broken one) might have, and returns it.
func (e *env) appendToUpload(id string, version int, data string) eventstore.NewEvent {
	e.t.Helper()
	ev := eventstore.NewEvent{ID: eventstore.NewEventID(), Type: images.TypeImageDeleted, SchemaVersion: version, Data: []byte(data)}
	if _, err := e.srv.Store().Append(context.Background(), images.StreamID(uuid.MustParse(id)), eventstore.Exact(1), ev); err != nil {
		e.t.Fatalf("append to image %s: %v", id, err)
	}
	return ev
}
