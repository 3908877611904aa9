// Package bridge republishes the event log to message brokers. A Bridge is
// a leased, checkpointed subscription (one per Sink, named "bridge-<sink>")
// that reads the log in order, maps each event to broker messages in the
// format the old services' consumers expect plus one full-fidelity
// CloudEvents message, publishes a batch, waits until the broker has
// acknowledged every message, and only then lets the runner store its
// checkpoint (while catching up, every Bridge.CheckpointInterval; at once
// when caught up or stopping). Delivery is therefore at least once; every
// message carries a deterministic id (ID, the NATS Nats-Msg-Id, and the
// ce_id header) so a repeat after a crash can be recognised.
//
// Sinks: NATS JetStream (NewNATS) and Kafka (NewKafka).
package bridge

import (
	"context"
	"errors"
)

// Header is one message header.
type Header struct {
	Key, Value string
}

// Message is one broker message.
type Message struct {
	// Topic is the Kafka topic, and the NATS subject.
	Topic string
	// Key is the partitioning key: the image's uuid.
	Key string
	// ID identifies the message for de-duplication (the NATS Nats-Msg-Id).
	// It is the event id for an event's first message and the event id
	// with a suffix ("/events", "/IMAGE_DELETED") for the others, so
	// that the ids of one event's messages differ in a shared stream.
	ID string
	// Headers in the order they are sent.
	Headers []Header
	// Body is the JSON payload.
	Body []byte
	// TraceParent is the W3C trace context of the event the message was
	// mapped from (the span that appended it), or "". It is not sent as it
	// is: a Traced sink's span for the message is its child, and that
	// span's context goes out in the traceparent header.
	TraceParent string
}

// Header returns the value of the header named key, or "".
func (m Message) Header(key string) string {
	for _, h := range m.Headers {
		if h.Key == key {
			return h.Value
		}
	}
	return ""
}

// Sink publishes messages to one broker.
type Sink interface {
	// Name names the sink in subscription names and logs ("nats", "kafka").
	Name() string
	// Publish sends the messages, in order, and returns nil only once the
	// broker has acknowledged every one of them. A repeated message (the
	// same ID) must be harmless.
	Publish(ctx context.Context, msgs []Message) error
	// Close releases the sink's connections.
	Close() error
}

// Pinger is implemented by sinks that can tell whether their broker
// answers, for the service's readiness report.
type Pinger interface {
	// Ping returns nil when the broker answers now.
	Ping(ctx context.Context) error
}

// PingerOf returns the Pinger of a sink, looking through wrappers (such
// as Traced) that have an Unwrap() Sink method; false when none can ping.
func PingerOf(s Sink) (Pinger, bool) {
	for s != nil {
		if p, ok := s.(Pinger); ok {
			return p, true
		}
		u, ok := s.(interface{ Unwrap() Sink })
		if !ok {
			return nil, false
		}
		s = u.Unwrap()
	}
	return nil, false
}

// ErrNotAcknowledged is returned (wrapped) by sinks when the broker did
// not acknowledge a message.
var ErrNotAcknowledged = errors.New("bridge: message not acknowledged")

// buffers lend the bodies and headers of a batch's messages from a few
// shared arrays, so that mapping a batch makes a handful of large
// allocations rather than two small ones per message. Each message keeps
// its part (capped: an append to it copies) for as long as it lives. A
// nil *buffers allocates each body and header list on its own.
type buffers struct {
	bytes   []byte
	headers []Header
}

// bufferChunk is the size of a buffers array, in elements.
const bufferChunk = 32 << 10

// bytesFor returns an empty slice with room for at least n bytes, at the
// free end of the shared array, to append one body to; keepBytes then
// claims what was appended.
func (b *buffers) bytesFor(n int) []byte {
	if b == nil {
		return make([]byte, 0, n)
	}
	if cap(b.bytes)-len(b.bytes) < n {
		b.bytes = make([]byte, 0, max(bufferChunk, n))
	}
	return b.bytes[len(b.bytes):]
}

// keepBytes claims body, built by appending to bytesFor's slice, and
// returns it capped. A body that outgrew its room was moved by append to
// an array of its own, and the shared array stays as it was.
func (b *buffers) keepBytes(body []byte) []byte {
	if b == nil || cap(body) != cap(b.bytes)-len(b.bytes) {
		return body
	}
	b.bytes = b.bytes[:len(b.bytes)+len(body)]
	return body[:len(body):len(body)]
}

// headersFor and keepHeaders are bytesFor and keepBytes for header lists.
func (b *buffers) headersFor(n int) []Header {
	if b == nil {
		return make([]Header, 0, n)
	}
	if cap(b.headers)-len(b.headers) < n {
		b.headers = make([]Header, 0, max(bufferChunk/32, n))
	}
	return b.headers[len(b.headers):]
}

func (b *buffers) keepHeaders(h []Header) []Header {
	if b == nil || cap(h) != cap(b.headers)-len(b.headers) {
		return h
	}
	b.headers = b.headers[:len(b.headers)+len(h)]
	return h[:len(h):len(h)]
}
