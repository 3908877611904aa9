package bridge_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/imageservice/imageservice/bridge"
)

// A bridge readies its sink as soon as it runs, before it has anything
// to publish: here the log is empty, so only the warm-up can have created
// the Kafka topics and the NATS stream. The sinks are wrapped as the
// server wraps them.
func TestRunWarmsTheSink(t *testing.T) {
	t.Run("kafka", func(t *testing.T) {
		w := newWorld(t)
		k := startKafka(t)
		w.run(bridge.Traced(k.sink(t), noop.NewTracerProvider()))
		// Metadata is cached for 5 s by default: a poll must see it afresh.
		cl, err := kgo.NewClient(kgo.SeedBrokers(k.c.ListenAddrs()...), kgo.MetadataMinAge(10*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		waitFor(t, "the topics to be created", func() (bool, error) {
			topics, err := kadm.NewClient(cl).ListTopics(context.Background())
			if err != nil {
				return false, err
			}
			return !slices.ContainsFunc(testTopics.All(), func(name string) bool { return !topics.Has(name) }), nil
		})
	})
	t.Run("nats", func(t *testing.T) {
		w := newWorld(t)
		n := startNATS(t)
		w.run(bridge.Traced(n.sink(n.url()), noop.NewTracerProvider()))
		js := jetStream(t, n.url())
		waitFor(t, "the stream to be created", func() (bool, error) {
			_, err := js.Stream(context.Background(), bridge.DefaultNATSStream)
			if errors.Is(err, jetstream.ErrStreamNotFound) {
				return false, nil
			}
			return err == nil, err
		})
	})
}
