package bridge

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Defaults of NATSOptions.
const (
	DefaultNATSStream        = "imageservice"
	DefaultDuplicateWindow   = 2 * time.Minute
	DefaultNATSAckTimeout    = 10 * time.Second
	natsMaxPendingPublishes  = 8192
	natsReconnectBufferBytes = 64 << 20
)

// NATSOptions configure a NATS JetStream sink.
type NATSOptions struct {
	// URL is the server URL (NATS_URL); it may hold credentials and is never logged.
	URL string
	// Stream is the JetStream stream the sink creates or updates (default DefaultNATSStream).
	Stream string
	// Subjects are the stream's subjects: the topic names.
	Subjects []string
	// DuplicateWindow is how long the stream remembers message ids to
	// drop repeats (default DefaultDuplicateWindow).
	DuplicateWindow time.Duration
	// AckTimeout is how long to wait for each publish acknowledgement
	// (default DefaultNATSAckTimeout).
	AckTimeout time.Duration
}

// NATSStats counts what a NATS sink's publishes were acknowledged as.
type NATSStats struct {
	// Stored counts messages the stream stored.
	Stored int64
	// Duplicates counts messages the stream acknowledged as repeats of a
	// message with the same Nats-Msg-Id, and did not store again.
	Duplicates int64
}

// NATS is a Sink that publishes to a JetStream stream.
type NATS struct {
	opts NATSOptions
	nc   *nats.Conn
	js   jetstream.JetStream

	mu      sync.Mutex // guards ensured
	ensured bool

	stored, duplicates atomic.Int64
}

// NewNATS connects to NATS. It does not wait for the server: the
// connection is retried in the background, and the stream is created or
// updated before the first publish.
func NewNATS(opts NATSOptions) (*NATS, error) {
	if opts.Stream == "" {
		opts.Stream = DefaultNATSStream
	}
	if opts.DuplicateWindow <= 0 {
		opts.DuplicateWindow = DefaultDuplicateWindow
	}
	if opts.AckTimeout <= 0 {
		opts.AckTimeout = DefaultNATSAckTimeout
	}
	if len(opts.Subjects) == 0 {
		return nil, errors.New("nats sink: no subjects")
	}
	nc, err := nats.Connect(opts.URL, nats.Name("imageservice bridge"),
		nats.RetryOnFailedConnect(true), nats.MaxReconnects(-1),
		nats.ReconnectWait(250*time.Millisecond), nats.ReconnectBufSize(natsReconnectBufferBytes))
	if err != nil {
		return nil, fmt.Errorf("nats sink: connect to NATS_URL: %w", err)
	}
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(natsMaxPendingPublishes),
		jetstream.WithPublishAsyncTimeout(opts.AckTimeout))
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("nats sink: jetstream: %w", err)
	}
	return &NATS{opts: opts, nc: nc, js: js}, nil
}

// Name implements Sink.
func (*NATS) Name() string { return "nats" }

// Stats returns the acknowledgement counts so far.
func (s *NATS) Stats() NATSStats {
	return NATSStats{Stored: s.stored.Load(), Duplicates: s.duplicates.Load()}
}

// Ping implements Pinger: the connection is up and JetStream answers.
func (s *NATS) Ping(ctx context.Context) error {
	if !s.nc.IsConnected() {
		return fmt.Errorf("nats sink: %w (%s)", nats.ErrDisconnected, s.nc.Status())
	}
	if _, err := s.js.AccountInfo(ctx); err != nil {
		return fmt.Errorf("nats sink: jetstream account info: %w", err)
	}
	return nil
}

// Warm implements Warmer: it creates or updates the stream.
func (s *NATS) Warm(ctx context.Context) error { return s.ensureStream(ctx) }

// Close implements Sink.
func (s *NATS) Close() error {
	s.nc.Close()
	return nil
}

// Publish implements Sink: it publishes every message asynchronously with
// its ID as Nats-Msg-Id and waits for every acknowledgement.
func (s *NATS) Publish(ctx context.Context, msgs []Message) error {
	if err := s.ensureStream(ctx); err != nil {
		return err
	}
	futures := make([]jetstream.PubAckFuture, 0, len(msgs))
	for _, m := range msgs {
		f, err := s.js.PublishMsgAsync(natsMsg(m))
		if err != nil {
			return fmt.Errorf("nats sink: publish %s to %s: %w", m.ID, m.Topic, err)
		}
		futures = append(futures, f)
	}
	for i, f := range futures {
		if err := s.await(ctx, f); err != nil {
			s.forgetStreamOn(err)
			return fmt.Errorf("nats sink: message %s to %s: %w", msgs[i].ID, msgs[i].Topic, err)
		}
	}
	return nil
}

// await waits for one publish acknowledgement and counts it.
func (s *NATS) await(ctx context.Context, f jetstream.PubAckFuture) error {
	select {
	case ack := <-f.Ok():
		if ack.Duplicate {
			s.duplicates.Add(1)
		} else {
			s.stored.Add(1)
		}
		return nil
	case err := <-f.Err():
		return fmt.Errorf("%w: %w", ErrNotAcknowledged, err)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// natsMsg builds the NATS message of m.
func natsMsg(m Message) *nats.Msg {
	msg := nats.NewMsg(m.Topic)
	msg.Data = m.Body
	for _, h := range m.Headers {
		msg.Header.Add(h.Key, h.Value)
	}
	msg.Header.Set(jetstream.MsgIDHeader, m.ID)
	msg.Header.Set("key", m.Key)
	return msg
}

// ensureStream creates or updates the stream once.
func (s *NATS) ensureStream(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ensured {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.AckTimeout)
	defer cancel()
	_, err := s.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        s.opts.Stream,
		Description: "imageservice events, in the old services' format and as CloudEvents",
		Subjects:    s.opts.Subjects,
		Storage:     jetstream.FileStorage,
		Duplicates:  s.opts.DuplicateWindow,
	})
	if err != nil {
		return fmt.Errorf("nats sink: create or update stream %s: %w", s.opts.Stream, err)
	}
	s.ensured = true
	return nil
}

// forgetStreamOn makes the next publish check the stream again after an
// error that says it is missing.
func (s *NATS) forgetStreamOn(err error) {
	if errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders) {
		s.mu.Lock()
		s.ensured = false
		s.mu.Unlock()
	}
}
