package bridge_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/imageservice/imageservice/bridge"
)

// fakeKafka is a kfake cluster whose produce requests can be refused.
type fakeKafka struct {
	c    *kfake.Cluster
	down atomic.Bool
}

func startKafka(t testing.TB) *fakeKafka {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	k := &fakeKafka{c: c}
	c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if k.down.Load() {
			return nil, errors.New("broker down"), true // closes the connection
		}
		return nil, nil, false
	})
	return k
}

func (k *fakeKafka) sink(t testing.TB) *bridge.Kafka { return kafkaSink(t, k.c.ListenAddrs()) }

// kafkaSink is a Kafka sink of the test topics on the brokers, closed
// when the test ends.
func kafkaSink(t testing.TB, brokers []string) *bridge.Kafka {
	t.Helper()
	s, err := bridge.NewKafka(bridge.KafkaOptions{Brokers: brokers, Topics: testTopics.All(),
		CreateTopics: true, DeliveryTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// consume reads records from the start of every topic until it has n.
func (k *fakeKafka) consume(t testing.TB, n int) []bridge.Message {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.c.ListenAddrs()...), kgo.ConsumeTopics(testTopics.All()...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out []bridge.Message
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d records, want %d", len(out), n)
		}
		fs.EachRecord(func(r *kgo.Record) {
			m := bridge.Message{Topic: r.Topic, Key: string(r.Key), Body: r.Value}
			for _, h := range r.Headers {
				m.Headers = append(m.Headers, bridge.Header{Key: h.Key, Value: string(h.Value)})
			}
			out = append(out, m)
		})
	}
	return out
}

// perKey groups messages by topic and key, keeping their order.
func perKey(msgs []bridge.Message) map[string][]bridge.Message {
	out := map[string][]bridge.Message{}
	for _, m := range msgs {
		out[m.Topic+"|"+m.Key] = append(out[m.Topic+"|"+m.Key], m)
	}
	return out
}

// checkKafka checks that every key's records are exactly the expected
// ones in order, with exactly the expected headers.
func checkKafka(t testing.TB, got, want []bridge.Message) {
	t.Helper()
	g, w := perKey(got), perKey(want)
	if len(g) != len(w) {
		t.Fatalf("%d topic/key pairs, want %d", len(g), len(w))
	}
	for k := range w {
		checkSame(t, g[k], w[k])
		for i := range w[k] {
			if len(g[k][i].Headers) != len(w[k][i].Headers) {
				t.Fatalf("%s record %d headers %v, want %v", k, i, g[k][i].Headers, w[k][i].Headers)
			}
		}
	}
}

func TestKafkaForwardsEveryEventInOrder(t *testing.T) {
	w := newWorld(t)
	k := startKafka(t)
	w.workload(0, 6)
	r := w.run(k.sink(t))
	w.waitCaughtUp(r.b)
	w.workload(100, 3)
	w.waitCaughtUp(r.b)
	want := w.expected()
	checkKafka(t, k.consume(t, len(want)), want)
}

func TestKafkaOutage(t *testing.T) {
	w := newWorld(t)
	k := startKafka(t)
	r := w.run(k.sink(t))
	w.workload(0, 3)
	w.waitCaughtUp(r.b)
	k.down.Store(true)
	w.workload(100, 4)
	time.Sleep(1500 * time.Millisecond) // past the delivery timeout: batches fail and back off
	if lag, err := r.b.Lag(context.Background()); err != nil || lag.Events == 0 {
		t.Fatalf("lag during the outage %+v, %v: want some", lag, err)
	}
	k.down.Store(false)
	w.waitCaughtUp(r.b)
	want := w.expected()
	checkKafka(t, k.consume(t, len(want)), want)
}

func TestKafkaKilledBetweenPublishAndCheckpoint(t *testing.T) {
	w := newWorld(t)
	k := startKafka(t)
	w.workload(0, 3)
	ready := make(chan *running, 1)
	killer := &killAfterPublish{Sink: k.sink(t), kill: func() { (<-ready).stop() }}
	first := w.run(killer)
	ready <- first
	<-first.done
	if len(killer.published) == 0 {
		t.Fatal("nothing was published before the crash")
	}
	r := w.run(k.sink(t))
	w.waitCaughtUp(r.b)
	want := w.expected()
	got := k.consume(t, len(want)+len(killer.published))
	// Each repeat is a second copy of a record, with the same ce_id.
	copies := map[string][]bridge.Message{}
	for _, m := range got {
		id := m.Topic + "|" + idOf(m)
		copies[id] = append(copies[id], m)
	}
	for _, m := range killer.published {
		c := copies[m.Topic+"|"+idOf(m)]
		if len(c) != 2 || sameMessageErr(c[0], c[1]) != nil {
			t.Fatalf("message %s: %d copies, want the original and an identical repeat", m.ID, len(c))
		}
		delete(copies, m.Topic+"|"+idOf(m))
	}
	for id, c := range copies {
		if len(c) != 1 {
			t.Errorf("%s: %d copies of a message that was not repeated", id, len(c))
		}
	}
}

// idOf is the ce_id of a binary-mode message, or the body of a structured one.
func idOf(m bridge.Message) string {
	if id := m.Header("ce_id"); id != "" {
		return id + "|" + m.Header("message_type")
	}
	return string(m.Body)
}
