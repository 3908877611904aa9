package images_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/imageservice/imageservice/images"
)

func sampleEvents() []images.Event {
	return []images.Event{
		images.ImageUploaded{ImageID: imageID, Filename: "cat.png", ContentType: "image/png", ByteSize: 10,
			Width: 3, Height: 4, SHA256: keyA, Owner: "alice", UploadedAt: t0},
		images.DitherRequested{DitherID: ditherID, DitherOptions: images.DitherOptions{Levels: 4,
			ChannelLevels: &images.ChannelLevels{R: 4, G: 3, B: 2}, Algorithm: "atkinson", Serpentine: true,
			Strength: 0.5, ColorSpace: "linear", Grayscale: true, Palette: "cga"}, RequestedAt: t0},
		images.DitherCompleted{DitherID: ditherID, ResultKey: keyB, ByteSize: 5, Width: 3, Height: 4,
			Colours: 8, DurationMs: 7, CompletedAt: t0},
		images.DitherFailed{DitherID: ditherID, Reason: "bad", CompletedAt: t0},
		images.ImageSynced{SecureURL: "https://x/a", PublicID: "a"},
		images.DitherSynced{DitherID: ditherID, SecureURL: "https://x/d", PublicID: "d"},
		images.ImageDeleted{DeletedAt: t0},
		images.ImageSyncFailed{Reason: "Cloudinary answered HTTP 401: bad key", Attempt: 1, FailedAt: t0},
		images.DitherSyncFailed{DitherID: ditherID, Reason: "gave up after 15 attempts", Attempt: 15, FailedAt: t0},
	}
}

func TestMarshalRoundTrip(t *testing.T) {
	for _, e := range sampleEvents() {
		t.Run(e.EventType(), func(t *testing.T) {
			typ, v, data, err := images.Marshal(e)
			if err != nil {
				t.Fatal(err)
			}
			if typ != e.EventType() || v != e.SchemaVersion() {
				t.Fatalf("got %s v%d", typ, v)
			}
			got, err := images.Unmarshal(typ, v, data)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, e) {
				t.Fatalf("round trip:\n got %#v\nwant %#v", got, e)
			}
		})
	}
}

func TestMarshalSnakeCase(t *testing.T) {
	_, _, data, err := images.Marshal(sampleEvents()[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"dither_id", "levels", "channel_levels", "algorithm", "serpentine", "strength",
		"color_space", "grayscale", "palette", "requested_at"} {
		if _, ok := m[k]; !ok {
			t.Errorf("missing JSON field %q in %s", k, data)
		}
	}
}

func TestMarshalPointer(t *testing.T) {
	typ, _, _, err := images.Marshal(&images.ImageDeleted{DeletedAt: t0})
	if err != nil || typ != images.TypeImageDeleted {
		t.Fatalf("Marshal(pointer) = %q, %v", typ, err)
	}
	if _, _, _, err := images.Marshal(nil); err == nil {
		t.Fatal("Marshal(nil) succeeded")
	}
}

type foreignEvent struct{}

func (foreignEvent) EventType() string  { return "Foreign" }
func (foreignEvent) SchemaVersion() int { return 1 }

func TestUnmarshalErrors(t *testing.T) {
	if _, _, _, err := images.Marshal(foreignEvent{}); !errors.Is(err, images.ErrUnknownEventType) {
		t.Fatalf("Marshal(foreign) = %v", err)
	}
	tests := []struct {
		name    string
		typ     string
		version int
		data    string
		want    error
	}{
		{"unknown type", "ImageRotated", 1, `{}`, images.ErrUnknownEventType},
		{"future version", images.TypeImageUploaded, 2, `{}`, images.ErrUnknownSchemaVersion},
		{"version zero", images.TypeImageUploaded, 0, `{}`, images.ErrUnknownSchemaVersion},
		{"bad json", images.TypeImageUploaded, 1, `{"image_id": 12}`, nil},
		{"bad json in upcast", images.TypeDitherRequested, 1, `[`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := images.Unmarshal(tt.typ, tt.version, []byte(tt.data))
			if err == nil {
				t.Fatal("no error")
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("error %v, want %v", err, tt.want)
			}
			if errors.Is(err, images.ErrUnreadable) != (tt.want != nil) {
				t.Fatalf("error %v is ErrUnreadable: %t, want %t", err, errors.Is(err, images.ErrUnreadable), tt.want != nil)
			}
			if rerr := images.Readable(tt.typ, tt.version); errors.Is(rerr, images.ErrUnreadable) != (tt.want != nil) {
				t.Fatalf("Readable = %v, want an error: %t", rerr, tt.want != nil)
			}
			if !strings.Contains(err.Error(), tt.typ) {
				t.Fatalf("error %q does not name the type", err)
			}
		})
	}
}

func TestUpcastDitherRequestedV1(t *testing.T) {
	tests := []struct {
		name string
		data string
		want images.DitherRequested
	}{
		{
			name: "enum algorithm",
			data: `{"dither_id":"` + ditherID.String() + `","levels":4,"algorithm":"FLOYD_STEINBERG"}`,
			want: images.DitherRequested{DitherID: ditherID, DitherOptions: images.DitherOptions{
				Levels: 4, Algorithm: "floyd-steinberg", Strength: 1, ColorSpace: "srgb"}},
		},
		{
			name: "missing fields get defaults",
			data: `{"dither_id":"` + ditherID.String() + `"}`,
			want: images.DitherRequested{DitherID: ditherID, DitherOptions: images.DitherOptions{
				Levels: 2, Algorithm: "floyd-steinberg", Strength: 1, ColorSpace: "srgb"}},
		},
		{
			name: "kebab algorithm kept",
			data: `{"dither_id":"` + ditherID.String() + `","levels":8,"algorithm":"bayer-4x4"}`,
			want: images.DitherRequested{DitherID: ditherID, DitherOptions: images.DitherOptions{
				Levels: 8, Algorithm: "bayer-4x4", Strength: 1, ColorSpace: "srgb"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := images.Unmarshal(images.TypeDitherRequested, 1, []byte(tt.data))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %#v\nwant %#v", got, tt.want)
			}
			// The upcast event folds with the recorded time as request time.
			s := images.Evolve(build(t, uploaded), got, images.EventMeta{RecordedAt: t0})
			if s.Dithers[0].RequestedAt != t0 || s.Dithers[0].Options.Validate() != nil {
				t.Fatalf("folded %+v", s.Dithers[0])
			}
		})
	}
}

func TestEventTypesAllDecode(t *testing.T) {
	for _, typ := range images.EventTypes() {
		if _, err := images.Unmarshal(typ, 1, []byte(`{}`)); err != nil {
			t.Errorf("%s v1: %v", typ, err)
		}
	}
}

// TestUnmarshalAcceptsWhatEncodingJSONAccepts: the log was written with
// encoding/json, and an event it can read must stay readable: every
// sample, and documents with names in another case, a repeated name or
// invalid UTF-8, decode to what encoding/json decodes.
func TestUnmarshalAcceptsWhatEncodingJSONAccepts(t *testing.T) {
	type doc struct {
		typ  string
		data string
	}
	var docs []doc
	for _, e := range sampleEvents() {
		data, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, doc{e.EventType(), string(data)})
	}
	docs = append(docs,
		doc{images.TypeImageUploaded, `{"Image_ID":"` + imageID.String() + `","FILENAME":"a.png","filename":"b.png","Filename":"c.png"}`},
		doc{images.TypeImageUploaded, "{\"filename\":\"bad \xff utf-8\",\"sha256\":\"" + keyA + "\"}"},
		doc{images.TypeDitherRequested, `{"dither_id":"` + ditherID.String() + `","levels":3,"levels":5,"Channel_Levels":{"r":2,"G":3,"b":4},"notify":null}`},
		doc{images.TypeDitherCompleted, `{"dither_id":"` + ditherID.String() + `","completed_at":"2026-11-30T10:00:00.123456789+01:00","extra":[1,{"x":null}]}`},
	)
	for _, d := range docs {
		got, err := images.Unmarshal(d.typ, currentVersion(t, d.typ), []byte(d.data))
		if err != nil {
			t.Fatalf("Unmarshal(%s) = %v", d.data, err)
		}
		want := reflect.New(reflect.TypeOf(got))
		if err := json.Unmarshal([]byte(d.data), want.Interface()); err != nil {
			t.Fatalf("encoding/json: %v", err)
		}
		if !reflect.DeepEqual(got, want.Elem().Interface()) {
			t.Errorf("%s:\n got %#v\nwant %#v (encoding/json)", d.data, got, want.Elem().Interface())
		}
	}
}

// currentVersion is the schema version Marshal writes for the type.
func currentVersion(t *testing.T, typ string) int {
	t.Helper()
	for _, e := range sampleEvents() {
		if e.EventType() == typ {
			return e.SchemaVersion()
		}
	}
	t.Fatalf("no sample of %s", typ)
	return 0
}
