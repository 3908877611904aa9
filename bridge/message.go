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
