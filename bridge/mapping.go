package bridge

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
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
// error saying why the old-format messages are missing (wrapping
// images.ErrUnknownSchemaVersion for a version this build does not know:
// the Bridge stops at those rather than publish without them). Events of streams
// that are not images' (the API keys', whose events hold key hashes) are
// the service's own business and map to no message.
func (m Mapper) Map(e eventstore.Event, before images.Image) ([]Message, error) {
	var decoded images.Event
	var err error
	if hasLegacy(e.Type) {
		decoded, err = images.Unmarshal(e.Type, e.SchemaVersion, e.Data)
	}
	return m.withDefaults().appendMessages(nil, nil, e, decoded, err, before, false)
}

// hasLegacy reports whether events of the type have old-format messages.
func hasLegacy(eventType string) bool {
	switch eventType {
	case images.TypeImageUploaded, images.TypeDitherCompleted, images.TypeImageDeleted:
		return true
	}
	return false
}

// appendMessages appends the messages of Map to msgs, for an event already
// decoded (decoded and decodeErr are what images.Unmarshal returned; they
// are only read for the types of hasLegacy), on a Mapper with its
// defaults filled in. The messages' bodies and headers come from buf
// (nil: each its own). validData says that e.Data is known to be valid
// JSON (images.Unmarshal, which parses all of it, accepted it; stores only
// take valid JSON in the first place), so that it need not be checked again.
func (m Mapper) appendMessages(msgs []Message, buf *buffers, e eventstore.Event, decoded images.Event, decodeErr error, before images.Image, validData bool) ([]Message, error) {
	imageID, perr := images.ParseStreamID(e.StreamID)
	if perr != nil {
		return msgs, nil // not an image's event: not published
	}
	ev := mappedEvent{Event: e, id: e.ID.String(), key: imageKey(e.StreamID, imageID), time: e.RecordedAt.UTC().Format(time.RFC3339Nano),
		traceParent: eventTraceParent(e), validData: validData, buf: buf}
	first := len(msgs)
	msgs, err := m.legacy(msgs, ev, imageID, decoded, decodeErr, before)
	msgs = append(msgs, m.structured(ev))
	for i := first; i < len(msgs); i++ {
		msgs[i].ID = messageID(ev.id, i-first, msgs[i])
		msgs[i].TraceParent = ev.traceParent
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

// mappedEvent is an event with the strings that several of its messages
// carry, formatted once.
type mappedEvent struct {
	eventstore.Event
	id          string // the event id
	key         string // the message key: the image uuid
	time        string // the recording time, RFC 3339 in UTC
	traceParent string // the recorded W3C trace context, "" when none or malformed
	validData   bool   // Data is known to be valid JSON
	buf         *buffers
}

// imageKey is the canonical string of an image stream's uuid: the end of
// the stream id, without a copy, when the stream id holds it in lower case
// (as images.StreamID writes it).
func imageKey(stream string, id uuid.UUID) string {
	rest := stream[len(stream)-36:] // images.ParseStreamID took 36 characters
	for i := 0; i < len(rest); i++ {
		if 'A' <= rest[i] && rest[i] <= 'F' {
			return id.String()
		}
	}
	return rest
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
func messageID(id string, i int, msg Message) string {
	if i == 0 {
		return id
	}
	if t := msg.Header("message_type"); t != "" {
		return id + "/" + t
	}
	return id + "/events"
}

// Bodies of the old messages; the extra fields are additions. Each
// appends itself as json.Marshal would write it (without reflection).
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

func (body imageUploadedBody) appendJSON(b []byte) []byte {
	b = append(b, `{"uuid":`...)
	b = appendJSONString(b, body.UUID)
	b = append(b, `,"url":`...)
	b = appendJSONString(b, body.URL)
	b = append(b, `,"filename":`...)
	b = appendJSONString(b, body.Filename)
	return append(b, '}')
}

func (body imageDeletedBody) appendJSON(b []byte) []byte {
	b = append(b, `{"uuid":`...)
	b = appendJSONString(b, body.UUID)
	return append(b, '}')
}

func (body ditherUploadedBody) appendJSON(b []byte) []byte {
	b = append(b, `{"uuid":`...)
	b = appendJSONString(b, body.UUID)
	b = append(b, `,"url_dither":`...)
	b = appendJSONString(b, body.URLDither)
	b = append(b, `,"dither_id":`...)
	b = appendJSONString(b, body.DitherID)
	if body.Channels != 0 {
		b = append(b, `,"channels":`...)
		b = strconv.AppendInt(b, int64(body.Channels), 10)
	}
	return append(b, '}')
}

func (body ditherDeletedBody) appendJSON(b []byte) []byte {
	b = append(b, `{"uuid":`...)
	b = appendJSONString(b, body.UUID)
	b = append(b, `,"dither_ids":`...)
	if body.DitherIDs == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i, id := range body.DitherIDs {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, id)
		}
		b = append(b, ']')
	}
	return append(b, '}')
}

// jsonBody is an old message's body.
type jsonBody interface {
	appendJSON(b []byte) []byte
}

// legacy appends the old services' messages for an event, if any, to msgs.
func (m Mapper) legacy(msgs []Message, e mappedEvent, imageID uuid.UUID, decoded images.Event, decodeErr error, before images.Image) ([]Message, error) {
	if !hasLegacy(e.Type) {
		return msgs, nil // no old message: only the events topic
	}
	if imageID == uuid.Nil {
		return msgs, fmt.Errorf("map event %s: stream %q is not an image stream", e.id, e.StreamID)
	}
	if decodeErr != nil {
		return msgs, fmt.Errorf("map event %s: %w", e.id, decodeErr)
	}
	id := e.key
	switch ev := decoded.(type) {
	case images.ImageUploaded:
		return append(msgs, m.old(e, m.Topics.Image, TypeImageUploaded,
			imageUploadedBody{UUID: id, URL: m.blobURL(ev.SHA256), Filename: ev.Filename})), nil
	case images.DitherCompleted:
		body := ditherUploadedBody{UUID: id, URLDither: m.blobURL(ev.ResultKey), DitherID: ev.DitherID.String()}
		if d, ok := before.Dither(ev.DitherID); ok {
			body.Channels = d.Options.Levels
		}
		return append(msgs, m.old(e, m.Topics.Dither, TypeDitherUploaded, body)), nil
	case images.ImageDeleted:
		return m.deleted(msgs, e, before), nil
	}
	return msgs, nil
}

// deleted maps ImageDeleted: DITHER_DELETED first when the image had
// completed dithers (they go with it), then IMAGE_DELETED.
func (m Mapper) deleted(msgs []Message, e mappedEvent, before images.Image) []Message {
	var done []string
	for _, d := range before.Dithers {
		if d.Status == images.DitherStatusCompleted {
			done = append(done, d.ID.String())
		}
	}
	if len(done) > 0 {
		msgs = append(msgs, m.old(e, m.Topics.Dither, TypeDitherDeleted, ditherDeletedBody{UUID: e.key, DitherIDs: done}))
	}
	return append(msgs, m.old(e, m.Topics.Image, TypeImageDeleted, imageDeletedBody{UUID: e.key}))
}

func (m Mapper) blobURL(key string) string { return m.PublicURL + "/blobs/" + key }

// old builds an old-format message with CloudEvents binary-mode headers.
// ce_traceparent (the distributed tracing extension) is among them when
// the event recorded a trace context.
func (m Mapper) old(e mappedEvent, topic, msgType string, body jsonBody) Message {
	data := e.buf.keepBytes(body.appendJSON(e.buf.bytesFor(192)))
	headers := e.buf.headersFor(10)
	headers = append(headers,
		Header{"message_type", msgType},
		Header{"version", LegacyVersion},
		Header{"ce_specversion", "1.0"},
		Header{"ce_id", e.id},
		Header{"ce_type", legacyCEType(msgType)},
		Header{"ce_source", m.Source},
		Header{"ce_time", e.time},
		Header{"ce_subject", e.StreamID},
	)
	if e.traceParent != "" {
		headers = append(headers, Header{"ce_traceparent", e.traceParent})
	}
	return Message{
		Topic:   topic,
		Key:     e.key,
		Headers: e.buf.keepHeaders(append(headers, Header{"content-type", "application/json"})),
		Body:    data,
	}
}

// LegacyTypePrefix starts the CloudEvents type (ce_type) of an
// old-format message: "imageservice.legacy.IMAGE_UPLOADED".
const LegacyTypePrefix = "imageservice.legacy."

// legacyCEType is LegacyTypePrefix + msgType, without building the
// strings of the old types again for every message.
func legacyCEType(msgType string) string {
	switch msgType {
	case TypeImageUploaded:
		return LegacyTypePrefix + TypeImageUploaded
	case TypeImageDeleted:
		return LegacyTypePrefix + TypeImageDeleted
	case TypeDitherUploaded:
		return LegacyTypePrefix + TypeDitherUploaded
	case TypeDitherDeleted:
		return LegacyTypePrefix + TypeDitherDeleted
	}
	return LegacyTypePrefix + msgType
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
func (m Mapper) structured(e mappedEvent) Message {
	return Message{
		Topic:   m.Topics.Events,
		Key:     e.key,
		Headers: e.buf.keepHeaders(append(e.buf.headersFor(1), Header{"content-type", "application/cloudevents+json"})),
		Body:    e.buf.keepBytes(m.cloudEventJSON(e)),
	}
}

// cloudEventJSON is json.Marshal of the event's cloudEvent, byte for byte,
// written without reflection (the envelope is most of the bridge's CPU
// time otherwise). Strings that need escaping and data that is not plain
// compact-able JSON take json.Marshal's own path.
func (m Mapper) cloudEventJSON(e mappedEvent) []byte {
	b := e.buf.bytesFor(256 + len(e.id) + len(m.Source) + len(e.Type) + len(e.StreamID) + len(e.time) +
		len(e.Metadata.CorrelationID) + len(e.Metadata.CausationID) + len(e.traceParent) + len(e.Data))
	b = append(b, `{"specversion":"1.0","id":`...)
	b = appendJSONString(b, e.id)
	b = append(b, `,"source":`...)
	b = appendJSONString(b, m.Source)
	b = append(b, `,"type":`...)
	if plainJSONString(e.Type) { // EventTypePrefix is plain too
		b = append(b, '"')
		b = append(b, EventTypePrefix...)
		b = append(b, e.Type...)
		b = append(b, '"')
	} else {
		b = appendJSONString(b, EventTypePrefix+e.Type)
	}
	b = append(b, `,"subject":`...)
	b = appendJSONString(b, e.StreamID)
	b = append(b, `,"time":`...)
	b = appendJSONString(b, e.time)
	b = append(b, `,"datacontenttype":"application/json","schemaversion":`...)
	b = strconv.AppendInt(b, int64(e.SchemaVersion), 10)
	b = append(b, `,"streamversion":`...)
	b = strconv.AppendInt(b, e.StreamVersion, 10)
	b = append(b, `,"position":"`...)
	b = strconv.AppendUint(b, e.Position.TransactionID, 10)
	b = append(b, '/')
	b = strconv.AppendInt(b, e.Position.Global, 10)
	b = append(b, '"')
	for _, f := range [...]struct{ name, value string }{
		{`,"correlationid":`, e.Metadata.CorrelationID},
		{`,"causationid":`, e.Metadata.CausationID},
		{`,"traceparent":`, e.traceParent},
	} {
		if f.value != "" {
			b = append(b, f.name...)
			b = appendJSONString(b, f.value)
		}
	}
	b = append(b, `,"data":`...)
	switch {
	case len(e.Data) == 0:
		b = append(b, "{}"...)
	case e.validData:
		var ok bool
		if b, ok = appendCompactJSON(b, e.Data); !ok {
			return m.cloudEventMarshal(e) // characters that json.Marshal escapes
		}
	default:
		buf := bytes.NewBuffer(b)
		start := buf.Len()
		if err := json.Compact(buf, e.Data); err != nil || needsHTMLEscape(buf.Bytes()[start:]) {
			return m.cloudEventMarshal(e) // what json.Marshal does with invalid data or HTML characters
		}
		b = buf.Bytes()
	}
	return append(b, '}')
}

// appendCompactJSON appends valid JSON without its insignificant white
// space, as json.Compact does, without checking it again. It reports
// false, having appended only part of src, when src holds a byte that
// may start a character json.Marshal escapes (<, >, &, and 0xE2 that
// starts U+2028 and U+2029) or ends inside a string.
func appendCompactJSON(b, src []byte) ([]byte, bool) {
	start := 0 // src[start:i] is still to be appended
	for i := 0; i < len(src); i++ {
		switch jsonClass[src[i]] {
		case jsonSpace:
			b = append(b, src[start:i]...)
			start = i + 1
		case jsonEscapedHTML:
			return b, false
		case jsonQuote:
			end, ok := stringEnd(src, i+1)
			if !ok {
				return b, false
			}
			i = end
		}
	}
	return append(b, src[start:]...), true
}

// stringEnd returns the index of the quote that ends the JSON string whose
// contents start at src[i], or false when the string holds a byte of
// jsonEscapedHTML or does not end.
func stringEnd(src []byte, i int) (int, bool) {
	for ; i < len(src); i++ {
		switch jsonClass[src[i]] {
		case jsonQuote:
			return i, true
		case jsonBackslash:
			i++ // the escaped byte
		case jsonEscapedHTML:
			return 0, false
		}
	}
	return 0, false
}

// Byte classes of jsonClass.
const (
	jsonPlain       = iota
	jsonSpace       // insignificant outside strings
	jsonQuote       // starts and ends strings
	jsonBackslash   // escapes the next byte in strings
	jsonEscapedHTML // <, >, & and 0xE2 (which starts U+2028 and U+2029)
	jsonUnsafe      // bytes that a JSON string cannot hold as they are: controls, DEL and non-ASCII
)

// jsonClass classifies every byte for appendCompactJSON and appendJSONString.
var jsonClass = func() (c [256]uint8) {
	for i := range c {
		if i < 0x20 || i >= 0x7f {
			c[i] = jsonUnsafe
		}
	}
	for _, b := range []byte{' ', '\t', '\n', '\r'} {
		c[b] = jsonSpace
	}
	c['"'], c['\\'] = jsonQuote, jsonBackslash
	for _, b := range []byte{'<', '>', '&', 0xE2} {
		c[b] = jsonEscapedHTML
	}
	return c
}()

// cloudEventMarshal is the event's cloudEvent marshalled by encoding/json:
// cloudEventJSON's reference and its fallback.
func (m Mapper) cloudEventMarshal(e mappedEvent) []byte {
	ce := cloudEvent{
		SpecVersion: "1.0", ID: e.id, Source: m.Source, Type: EventTypePrefix + e.Type,
		Subject: e.StreamID, Time: e.time,
		DataContentType: "application/json", SchemaVersion: e.SchemaVersion,
		StreamVersion: e.StreamVersion, Position: e.Position.String(),
		CorrelationID: e.Metadata.CorrelationID, CausationID: e.Metadata.CausationID,
		TraceParent: e.traceParent, Data: e.Data,
	}
	if len(ce.Data) == 0 {
		ce.Data = json.RawMessage("{}")
	}
	body, _ := json.Marshal(ce) // Data is JSON from the log
	return body
}

// appendJSONString appends s as json.Marshal writes it: directly when it
// is printable ASCII with nothing to escape, through json.Marshal otherwise.
func appendJSONString(b []byte, s string) []byte {
	if !plainJSONString(s) {
		q, _ := json.Marshal(s) // a string always marshals
		return append(b, q...)
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// plainJSONString reports whether json.Marshal writes s between quotes as
// it is: printable ASCII without quotes, backslashes, <, > or &.
func plainJSONString(s string) bool {
	for i := 0; i < len(s); i++ {
		if jsonClass[s[i]] != jsonPlain && s[i] != ' ' {
			return false
		}
	}
	return true
}

// needsHTMLEscape reports whether compact JSON holds characters that
// json.Marshal escapes: <, >, &, U+2028 and U+2029.
func needsHTMLEscape(b []byte) bool {
	for i, c := range b {
		switch c {
		case '<', '>', '&':
			return true
		case 0xE2: // U+2028 and U+2029 are E2 80 A8 and E2 80 A9
			if i+2 < len(b) && b[i+1] == 0x80 && b[i+2]&^1 == 0xA8 {
				return true
			}
		}
	}
	return false
}
