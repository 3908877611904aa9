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
	"sync"
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
	// same ID) must be harmless. Once it has returned nil, Publish must
	// not use msgs, their bodies or their headers again (as io.Writer must
	// not keep p): the bridge reuses their memory for later batches.
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
func PingerOf(s Sink) (Pinger, bool) { return sinkAs[Pinger](s) }

// Warmer is implemented by sinks that can get ready to publish before
// their first batch: connect, create or update their topics or stream,
// and obtain whatever else the first Publish would wait for. A bridge
// warms its sink while it takes its lease and reads and maps its first
// batch, so that a bridge that starts or takes over publishes sooner.
// Publish never depends on it: after a failed Warm, Publish does the
// same work itself.
type Warmer interface {
	// Warm readies the sink and returns nil once it is ready.
	Warm(ctx context.Context) error
}

// sinkAs returns the first of a sink and the sinks it wraps (through an
// Unwrap() Sink method) that implements T.
func sinkAs[T any](s Sink) (T, bool) {
	for s != nil {
		if t, ok := s.(T); ok {
			return t, true
		}
		u, ok := s.(interface{ Unwrap() Sink })
		if !ok {
			break
		}
		s = u.Unwrap()
	}
	var zero T
	return zero, false
}

// ErrNotAcknowledged is returned (wrapped) by sinks when the broker did
// not acknowledge a message.
var ErrNotAcknowledged = errors.New("bridge: message not acknowledged")

// buffers lend the bodies and headers of a batch's messages, and the
// list that holds them, from a few large arrays, so that mapping a batch
// makes no allocation per message; once the broker has acknowledged the
// batch, reset lets a later batch reuse them. Each message keeps its part
// (capped: an append to it copies). A nil *buffers allocates each body
// and header list on its own.
type buffers struct {
	bytes   chunks[byte]
	headers chunks[Header]
	msgs    []Message
}

// Sizes of the arrays that buffers allocate, in elements.
const (
	byteChunk   = 32 << 10
	headerChunk = 1 << 10
)

// reset makes all of the arrays free for the next batch's messages.
func (b *buffers) reset() {
	b.bytes.reset()
	b.headers.reset()
	clear(b.msgs) // drop the references to bodies that had arrays of their own
	b.msgs = b.msgs[:0]
}

// bytesFor returns an empty slice with room for at least n bytes, to
// append one body to; keepBytes then claims what was appended.
func (b *buffers) bytesFor(n int) []byte {
	if b == nil {
		return make([]byte, 0, n)
	}
	return b.bytes.room(n, byteChunk)
}

// keepBytes claims body, built by appending to bytesFor's slice, and
// returns it capped.
func (b *buffers) keepBytes(body []byte) []byte {
	if b == nil {
		return body
	}
	return b.bytes.keep(body)
}

// headersFor and keepHeaders are bytesFor and keepBytes for header lists.
func (b *buffers) headersFor(n int) []Header {
	if b == nil {
		return make([]Header, 0, n)
	}
	return b.headers.room(n, headerChunk)
}

func (b *buffers) keepHeaders(h []Header) []Header {
	if b == nil {
		return h
	}
	return b.headers.keep(h)
}

// chunks hands out consecutive parts of a few large arrays.
type chunks[T any] struct {
	arrays [][]T // in use: arrays[:cur+1]
	cur    int
}

// room returns an empty slice with room for at least n elements at the
// free end of the current array, moving on to the next array (or a new
// one of at least size elements) when that one has less room.
func (c *chunks[T]) room(n, size int) []T {
	for c.cur < len(c.arrays) && cap(c.arrays[c.cur])-len(c.arrays[c.cur]) < n {
		c.cur++
	}
	if c.cur == len(c.arrays) {
		c.arrays = append(c.arrays, make([]T, 0, max(size, n)))
	}
	a := c.arrays[c.cur]
	return a[len(a):]
}

// keep claims part, built by appending to room's slice, and returns it
// capped. A part that outgrew its room was moved by append to an array of
// its own, and the current array stays as it was.
func (c *chunks[T]) keep(part []T) []T {
	a := c.arrays[c.cur]
	if cap(part) != cap(a)-len(a) {
		return part
	}
	c.arrays[c.cur] = a[:len(a)+len(part)]
	return part[:len(part):len(part)]
}

// reset makes every array free again.
func (c *chunks[T]) reset() {
	for i := range c.arrays {
		c.arrays[i] = c.arrays[i][:0]
	}
	c.cur = 0
}

// freeList keeps up to keptFree values for reuse, in a buffered channel:
// unlike a sync.Pool, which every garbage collection empties (and a busy
// bridge collects every few milliseconds), it keeps them. The zero
// freeList is ready to use.
type freeList[T any] struct {
	once sync.Once
	ch   chan *T
}

// keptFree is how many values a freeList keeps: enough for the bridge's
// pipeline (a batch published, one prepared, one being prepared) and one
// to spare.
const keptFree = 4

// get returns a kept value, or a new one when none is kept.
func (f *freeList[T]) get() *T {
	select {
	case v := <-f.list():
		return v
	default:
		return new(T)
	}
}

// put keeps v, unless keptFree values are kept already.
func (f *freeList[T]) put(v *T) {
	select {
	case f.list() <- v:
	default:
	}
}

func (f *freeList[T]) list() chan *T {
	f.once.Do(func() { f.ch = make(chan *T, keptFree) })
	return f.ch
}
