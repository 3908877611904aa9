package bridge

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/imageservice/imageservice/eventstore"
	"github.com/imageservice/imageservice/images"
	"github.com/imageservice/imageservice/tracing"
)

// Old message types, in the message_type header.
const (
	TypeImageUploaded  = "IMAGE_UPLOADED"
	TypeImageDeleted   = "IMAGE_DELETED"
	TypeDitherUploaded = "DITHER_UPLOADED"
	TypeDitherDeleted  = "DITHER_DELETED"
)

// LegacyVersion is the value of the version header, as the old services sent it.
const LegacyVersion = "1.0.0"

// Default topic names.
const (
	DefaultImageTopic  = "images"
	DefaultDitherTopic = "dithers"
	DefaultEventsTopic = "imageservice.events"
	DefaultSource      = "/imageservice"
)

// Topics are the topic (and NATS subject) names the bridge publishes to.
type Topics struct {
	// Image gets IMAGE_UPLOADED and IMAGE_DELETED (KAFKA_IMAGE_TOPIC).
	Image string
	// Dither gets DITHER_UPLOADED and DITHER_DELETED (KAFKA_DITHER_TOPIC).
	Dither string
	// Events gets every event as a structured CloudEvent (KAFKA_EVENTS_TOPIC).
	Events string
}

// All returns the distinct topic names.
func (t Topics) All() []string {
	out := []string{t.Image}
	for _, n := range []string{t.Dither, t.Events} {
		if n != out[0] && (len(out) < 2 || n != out[1]) {
			out = append(out, n)
		}
	}
	return out
}

// Mapper turns events into broker messages. It is a pure function of its
// fields, the event and the image's state before the event.
type Mapper struct {
	// PublicURL is the service's base URL; blob links are PublicURL/blobs/<sha256>.
	PublicURL string
	// Source is the CloudEvents source (default DefaultSource).
	Source string
	// Topics are the destinations (empty names take the defaults).
	Topics Topics
}

// NeedsState reports whether Map needs the image's state before an event of
// this type (DitherCompleted for the levels, ImageDeleted for the dithers).
func NeedsState(eventType string) bool {
	return eventType == images.TypeDitherCompleted || eventType == images.TypeImageDeleted
}

// Map returns the messages of one event, in publishing order: the old
// services' messages (none, one or two) and then the full-fidelity
// CloudEvent on the events topic. before is the image's state before the
// event; it is only read for the types of NeedsState. When the event
// cannot be decoded, Map still returns the events-topic message, with an
// error saying why the old-format messages are missing.
func (m Mapper) Map(e eventstore.Event, before images.Image) ([]Message, error) {
	m = m.withDefaults()
	imageID, _ := images.ParseStreamID(e.StreamID)
	legacy, err := m.legacy(e, imageID, before)
	msgs := make([]Message, 0, len(legacy)+1)
	msgs = append(msgs, legacy...)
	msgs = append(msgs, m.structured(e))
	traceParent := eventTraceParent(e)
	for i := range msgs {
		msgs[i].ID = messageID(e.ID, i, msgs[i])
		msgs[i].TraceParent = traceParent
	}
	return msgs, err
}

// eventTraceParent is the event's recorded traceparent when it is a
// well-formed W3C one (events recorded before tracing may hold anything
// a client sent), else "".
func eventTraceParent(e eventstore.Event) string {
	if _, ok := tracing.Parse(e.Metadata.TraceParent); ok {
		return e.Metadata.TraceParent
	}
	return ""
}

func (m Mapper) withDefaults() Mapper {
	if m.Source == "" {
		m.Source = DefaultSource
	}
	if m.Topics.Image == "" {
		m.Topics.Image = DefaultImageTopic
	}
	if m.Topics.Dither == "" {
		m.Topics.Dither = DefaultDitherTopic
	}
	if m.Topics.Events == "" {
		m.Topics.Events = DefaultEventsTopic
	}
	return m
}

// messageID is the event id for an event's first message and the event id
// with a suffix naming the message for the others.
func messageID(id uuid.UUID, i int, msg Message) string {
	if i == 0 {
		return id.String()
	}
	if t := msg.Header("message_type"); t != "" {
		return id.String() + "/" + t
	}
	return id.String() + "/events"
}

// Bodies of the old messages; the extra fields are additions.
type (
	imageUploadedBody struct {
		UUID     string `json:"uuid"`
		URL      string `json:"url"`
		Filename string `json:"filename"`
	}
	imageDeletedBody struct {
		UUID string `json:"uuid"`
	}
	ditherUploadedBody struct {
		UUID      string `json:"uuid"`
		URLDither string `json:"url_dither"`
		DitherID  string `json:"dither_id"`
		Channels  int    `json:"channels,omitempty"`
	}
	ditherDeletedBody struct {
		UUID      string   `json:"uuid"`
		DitherIDs []string `json:"dither_ids"`
	}
)

// legacy returns the old services' messages for an event, if any.
func (m Mapper) legacy(e eventstore.Event, imageID uuid.UUID, before images.Image) ([]Message, error) {
	switch e.Type {
	case images.TypeImageUploaded, images.TypeDitherCompleted, images.TypeImageDeleted:
	default:
		return nil, nil // no old message: only the events topic
	}
	if imageID == uuid.Nil {
		return nil, fmt.Errorf("map event %s: stream %q is not an image stream", e.ID, e.StreamID)
	}
	decoded, err := images.Unmarshal(e.Type, e.SchemaVersion, e.Data)
	if err != nil {
		return nil, fmt.Errorf("map event %s: %w", e.ID, err)
	}
	id := imageID.String()
	switch ev := decoded.(type) {
	case images.ImageUploaded:
		return []Message{m.old(e, m.Topics.Image, TypeImageUploaded,
			imageUploadedBody{UUID: id, URL: m.blobURL(ev.SHA256), Filename: ev.Filename})}, nil
	case images.DitherCompleted:
		body := ditherUploadedBody{UUID: id, URLDither: m.blobURL(ev.ResultKey), DitherID: ev.DitherID.String()}
		if d, ok := before.Dither(ev.DitherID); ok {
			body.Channels = d.Options.Levels
		}
		return []Message{m.old(e, m.Topics.Dither, TypeDitherUploaded, body)}, nil
	case images.ImageDeleted:
		return m.deleted(e, id, before), nil
	}
	return nil, nil
}

// deleted maps ImageDeleted: DITHER_DELETED first when the image had
// completed dithers (they go with it), then IMAGE_DELETED.
func (m Mapper) deleted(e eventstore.Event, id string, before images.Image) []Message {
	var out []Message
	var done []string
	for _, d := range before.Dithers {
		if d.Status == images.DitherStatusCompleted {
			done = append(done, d.ID.String())
		}
	}
	if len(done) > 0 {
		out = append(out, m.old(e, m.Topics.Dither, TypeDitherDeleted, ditherDeletedBody{UUID: id, DitherIDs: done}))
	}
	return append(out, m.old(e, m.Topics.Image, TypeImageDeleted, imageDeletedBody{UUID: id}))
}

func (m Mapper) blobURL(key string) string { return m.PublicURL + "/blobs/" + key }

// old builds an old-format message with CloudEvents binary-mode headers,
// ce_traceparent (the distributed tracing extension) among them when the
// event recorded a trace context.
func (m Mapper) old(e eventstore.Event, topic, msgType string, body any) Message {
	data, _ := json.Marshal(body) // plain structs of strings and ints
	headers := make([]Header, 0, 11)
	headers = append(headers,
		Header{"message_type", msgType},
		Header{"version", LegacyVersion},
		Header{"ce_specversion", "1.0"},
		Header{"ce_id", e.ID.String()},
		Header{"ce_type", "imageservice.legacy." + msgType},
		Header{"ce_source", m.Source},
		Header{"ce_time", e.RecordedAt.UTC().Format(time.RFC3339Nano)},
		Header{"ce_subject", e.StreamID},
	)
	if tp := eventTraceParent(e); tp != "" {
		headers = append(headers, Header{"ce_traceparent", tp})
	}
	return Message{
		Topic:   topic,
		Key:     subjectKey(e.StreamID),
		Headers: append(headers, Header{"content-type", "application/json"}),
		Body:    data,
	}
}

// cloudEvent is a CloudEvents 1.0 structured-mode JSON event.
type cloudEvent struct {
	SpecVersion     string          `json:"specversion"`
	ID              string          `json:"id"`
	Source          string          `json:"source"`
	Type            string          `json:"type"`
	Subject         string          `json:"subject"`
	Time            string          `json:"time"`
	DataContentType string          `json:"datacontenttype"`
	SchemaVersion   int             `json:"schemaversion"`
	StreamVersion   int64           `json:"streamversion"`
	Position        string          `json:"position"`
	CorrelationID   string          `json:"correlationid,omitempty"`
	CausationID     string          `json:"causationid,omitempty"`
	TraceParent     string          `json:"traceparent,omitempty"`
	Data            json.RawMessage `json:"data"`
}

// EventTypePrefix starts the CloudEvents type of a full-fidelity message:
// "imageservice.ImageUploaded".
const EventTypePrefix = "imageservice."

// structured builds the events-topic message: the event as stored, as a
// CloudEvents structured-mode JSON document.
func (m Mapper) structured(e eventstore.Event) Message {
	ce := cloudEvent{
		SpecVersion: "1.0", ID: e.ID.String(), Source: m.Source, Type: EventTypePrefix + e.Type,
		Subject: e.StreamID, Time: e.RecordedAt.UTC().Format(time.RFC3339Nano),
		DataContentType: "application/json", SchemaVersion: e.SchemaVersion,
		StreamVersion: e.StreamVersion, Position: e.Position.String(),
		CorrelationID: e.Metadata.CorrelationID, CausationID: e.Metadata.CausationID,
		TraceParent: eventTraceParent(e), Data: e.Data,
	}
	if len(ce.Data) == 0 {
		ce.Data = json.RawMessage("{}")
	}
	body, _ := json.Marshal(ce) // Data is JSON from the log
	return Message{
		Topic:   m.Topics.Events,
		Key:     subjectKey(e.StreamID),
		Headers: []Header{{"content-type", "application/cloudevents+json"}},
		Body:    body,
	}
}

// subjectKey is the message key: the image uuid, or the stream id of a
// stream that is not an image's.
func subjectKey(stream string) string {
	if id, err := images.ParseStreamID(stream); err == nil {
		return id.String()
	}
	return stream
}
