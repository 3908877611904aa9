package bridge

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// DefaultKafkaDeliveryTimeout is how long a record may wait for its
// acknowledgement, retries included, before its batch fails.
const DefaultKafkaDeliveryTimeout = 30 * time.Second

// SASL mechanisms a Kafka sink accepts.
const (
	SASLPlain       = "PLAIN"
	SASLScramSHA256 = "SCRAM-SHA-256"
	SASLScramSHA512 = "SCRAM-SHA-512"
)

// KafkaOptions configure a Kafka sink.
type KafkaOptions struct {
	// Brokers are the seed brokers (KAFKA_SERVER, comma separated).
	Brokers []string
	// Topics are the topics published to, created first when CreateTopics is set.
	Topics []string
	// CreateTopics creates missing topics with the broker's default
	// partitions and replication (KAFKA_CREATE_TOPICS).
	CreateTopics bool
	// SASLMechanism is "", SASLPlain, SASLScramSHA256 or SASLScramSHA512.
	SASLMechanism string
	// SASLUsername and SASLPassword are the SASL credentials; never logged.
	SASLUsername, SASLPassword string
	// TLS dials the brokers over TLS with the system's roots (KAFKA_TLS).
	TLS bool
	// DeliveryTimeout bounds each record's delivery (default DefaultKafkaDeliveryTimeout).
	DeliveryTimeout time.Duration
	// Extra are more client options (tests use them).
	Extra []kgo.Opt
}

// Kafka is a Sink that produces to Kafka with an idempotent producer that
// waits for acknowledgement from all in-sync replicas.
type Kafka struct {
	opts KafkaOptions
	cl   *kgo.Client

	mu      sync.Mutex // guards created
	created bool
	// records are the arrays of the last batch's records, for the next.
	records freeList[kafkaRecords]
}

// NewKafka creates the client. It does not wait for the brokers.
func NewKafka(opts KafkaOptions) (*Kafka, error) {
	if len(opts.Brokers) == 0 {
		return nil, errors.New("kafka sink: no brokers")
	}
	if opts.DeliveryTimeout <= 0 {
		opts.DeliveryTimeout = DefaultKafkaDeliveryTimeout
	}
	kopts := []kgo.Opt{
		kgo.SeedBrokers(opts.Brokers...),
		kgo.RequiredAcks(kgo.AllISRAcks()), // idempotent writes are kgo's default
		kgo.RecordDeliveryTimeout(opts.DeliveryTimeout),
		kgo.ProducerLinger(5 * time.Millisecond),
		kgo.ClientID("imageservice-bridge"),
	}
	mech, err := saslMechanism(opts)
	if err != nil {
		return nil, err
	}
	if mech != nil {
		kopts = append(kopts, kgo.SASL(mech))
	}
	if opts.TLS {
		kopts = append(kopts, kgo.DialTLSConfig(&tls.Config{MinVersion: tls.VersionTLS12}))
	}
	cl, err := kgo.NewClient(append(kopts, opts.Extra...)...)
	if err != nil {
		return nil, fmt.Errorf("kafka sink: new client: %w", err)
	}
	return &Kafka{opts: opts, cl: cl}, nil
}

// saslMechanism returns the configured SASL mechanism, or nil for none.
func saslMechanism(o KafkaOptions) (sasl.Mechanism, error) {
	switch strings.ToUpper(o.SASLMechanism) {
	case "":
		return nil, nil
	case SASLPlain:
		return plain.Auth{User: o.SASLUsername, Pass: o.SASLPassword}.AsMechanism(), nil
	case SASLScramSHA256:
		return scram.Auth{User: o.SASLUsername, Pass: o.SASLPassword}.AsSha256Mechanism(), nil
	case SASLScramSHA512:
		return scram.Auth{User: o.SASLUsername, Pass: o.SASLPassword}.AsSha512Mechanism(), nil
	}
	return nil, fmt.Errorf("kafka sink: SASL mechanism %q is not one of %s, %s, %s",
		o.SASLMechanism, SASLPlain, SASLScramSHA256, SASLScramSHA512)
}

// Name implements Sink.
func (*Kafka) Name() string { return "kafka" }

// Ping implements Pinger: a broker answers.
func (k *Kafka) Ping(ctx context.Context) error {
	if err := k.cl.Ping(ctx); err != nil {
		return fmt.Errorf("kafka sink: ping: %w", err)
	}
	return nil
}

// Warm implements Warmer: it creates missing topics when configured to,
// loads the idempotent producer's id, and opens the produce connections.
func (k *Kafka) Warm(ctx context.Context) error {
	if err := k.ensureTopics(ctx); err != nil {
		return err
	}
	if _, _, err := k.cl.ProducerID(ctx); err != nil {
		return fmt.Errorf("kafka sink: producer id: %w", err)
	}
	if err := k.cl.EnsureProduceConnectionIsOpen(ctx); err != nil {
		return fmt.Errorf("kafka sink: open produce connections: %w", err)
	}
	return nil
}

// Close implements Sink.
func (k *Kafka) Close() error {
	k.cl.Close()
	return nil
}

// Client returns the underlying client.
func (k *Kafka) Client() *kgo.Client { return k.cl }

// Publish implements Sink: it produces every record and waits for every
// acknowledgement. Records with the same key go to the same partition in
// order.
func (k *Kafka) Publish(ctx context.Context, msgs []Message) error {
	if err := k.ensureTopics(ctx); err != nil {
		return err
	}
	recs := k.records.get()
	defer func() { recs.clear(); k.records.put(recs) }()
	recs.build(msgs)
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	promise := func(r *kgo.Record, err error) {
		defer wg.Done()
		if err != nil {
			once.Do(func() {
				first = fmt.Errorf("kafka sink: record %s to %s: %w: %w", recs.messageID(msgs, r), r.Topic, ErrNotAcknowledged, err)
			})
		}
	}
	wg.Add(len(msgs))
	for i := range recs.recs {
		k.cl.Produce(ctx, &recs.recs[i], promise)
	}
	// The whole batch is buffered: send it now rather than after the linger.
	err := k.cl.Flush(ctx)
	wg.Wait() // every promise was called: the producer is done with the records
	if err != nil {
		return fmt.Errorf("kafka sink: flush: %w", err)
	}
	return first
}

// kafkaRecords are the Kafka records of a batch, their headers, and one
// array for the bytes of their keys and header values. The records are
// the producer's until their promises are called; then a later batch
// reuses the arrays.
type kafkaRecords struct {
	recs    []kgo.Record
	headers []kgo.RecordHeader
	bytes   []byte
}

// build makes the records of msgs, growing the arrays only when they are
// too small.
func (k *kafkaRecords) build(msgs []Message) {
	headers, size := 0, 0
	for _, m := range msgs {
		headers += len(m.Headers)
		size += len(m.Key)
		for _, h := range m.Headers {
			size += len(h.Value)
		}
	}
	k.recs = slices.Grow(k.recs[:0], len(msgs))[:len(msgs)]
	k.headers = slices.Grow(k.headers[:0], headers)
	k.bytes = slices.Grow(k.bytes[:0], size)
	for i, m := range msgs {
		start := len(k.headers)
		for _, h := range m.Headers {
			k.headers = append(k.headers, kgo.RecordHeader{Key: h.Key, Value: k.bytesOf(h.Value)})
		}
		k.recs[i] = kgo.Record{Topic: m.Topic, Key: k.bytesOf(m.Key), Value: m.Body, Headers: k.headers[start:len(k.headers):len(k.headers)]}
	}
}

// bytesOf copies s to the bytes array, which has room for it.
func (k *kafkaRecords) bytesOf(s string) []byte {
	start := len(k.bytes)
	k.bytes = append(k.bytes, s...)
	return k.bytes[start:len(k.bytes):len(k.bytes)]
}

// messageID returns the ID of the message whose record r points to (a
// search, for the error of a failed record only).
func (k *kafkaRecords) messageID(msgs []Message, r *kgo.Record) string {
	for i := range k.recs {
		if &k.recs[i] == r {
			return msgs[i].ID
		}
	}
	return "(unknown)"
}

// clear drops the references to the messages' strings and bodies.
func (k *kafkaRecords) clear() {
	clear(k.recs)
}

// ensureTopics creates missing topics once, when configured to.
func (k *Kafka) ensureTopics(ctx context.Context) error {
	if !k.opts.CreateTopics {
		return nil
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.created {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, k.opts.DeliveryTimeout)
	defer cancel()
	res, err := kadm.NewClient(k.cl).CreateTopics(ctx, -1, -1, nil, k.opts.Topics...)
	if err != nil {
		return fmt.Errorf("kafka sink: create topics: %w", err)
	}
	for _, t := range res.Sorted() {
		if t.Err != nil && !errors.Is(t.Err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("kafka sink: create topic %s: %w", t.Topic, t.Err)
		}
	}
	k.created = true
	return nil
}
