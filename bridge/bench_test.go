package bridge_test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/imageservice/imageservice/bridge"
	"github.com/imageservice/imageservice/eventstore"
	"github.com/imageservice/imageservice/images"
)

// benchImages is the number of images in the benchmark's log; each has
// three events (upload, dither requested, dither completed): five messages.
const benchImages = 1000

// BenchmarkBridge measures events per second forwarded by the bridge
// (read from Postgres, mapped, published in batches, acknowledged,
// checkpointed) against the same sink client publishing the same messages
// directly in the same batches, on a fresh broker each.
func BenchmarkBridge(b *testing.B) {
	b.Run("nats", func(b *testing.B) {
		benchSink(b, func(tb testing.TB) bridge.Sink { n := startNATS(tb); return n.sink(n.url()) })
	})
	b.Run("kafka", func(b *testing.B) {
		benchSink(b, func(tb testing.TB) bridge.Sink { return startKafka(tb).sink(tb) })
	})
	// The broker in a process of its own, as brokers run: in the test's
	// process, kfake's goroutines share its two Ps and its garbage
	// collector with the publisher.
	b.Run("kafka-process", func(b *testing.B) {
		benchSink(b, func(tb testing.TB) bridge.Sink { return kafkaSink(tb, []string{startKafkaProcess(tb, 0)}) })
	})
	// And answering each produce request after 1 ms, as a broker across a
	// network that waits for its replicas (acks=all) would at best.
	b.Run("kafka-process-1ms", func(b *testing.B) {
		benchSink(b, func(tb testing.TB) bridge.Sink {
			return kafkaSink(tb, []string{startKafkaProcess(tb, time.Millisecond)})
		})
	})
}

// benchBatch is the bridge's batch size in events, and the direct
// publisher's batch size in the same events' messages.
const benchBatch = 500

func benchSink(b *testing.B, newSink func(testing.TB) bridge.Sink) {
	w := newWorld(b)
	appendBenchLog(b, w)
	events := benchImages * 3
	// Another transaction open anywhere in the database hides the newest
	// events for a while: wait until all of them can be read.
	waitFor(b, "the whole log to be readable", func() (bool, error) {
		all, err := w.store.ReadAll(context.Background(), eventstore.Position{}, events)
		return len(all) == events, err
	})
	// A table this new has no planner statistics yet (autovacuum analyzes
	// it later), and without them PostgreSQL reads each batch by sorting
	// the whole rest of the log: give it the statistics a live table has.
	if _, err := w.store.Pool().Exec(context.Background(), "ANALYZE events"); err != nil {
		b.Fatal(err)
	}
	msgs := w.expected()
	var direct, bridged span
	for b.Loop() {
		direct = direct.add(publishDirect(b, newSink(b), msgs))
		bridged = bridged.add(runBridge(b, w, newSink(b)))
	}
	n := float64(b.N)
	directRate := float64(events) * n / direct.wall.Seconds()
	bridgedRate := float64(events) * n / bridged.wall.Seconds()
	b.ReportMetric(bridgedRate, "bridged-events/s")
	b.ReportMetric(directRate, "direct-events/s")
	b.ReportMetric(bridgedRate/directRate, "ratio")
	fmt.Printf("%s: %d events (%d messages): bridged %.0f events/s, direct %.0f events/s, ratio %.2f\n",
		b.Name(), events, len(msgs), bridgedRate, directRate, bridgedRate/directRate)
	if bridged.cpu > 0 {
		// However well the bridge overlaps its work, it cannot finish
		// sooner than its CPU time spread over every core.
		ceiling := direct.wall.Seconds() / (bridged.cpu.Seconds() / float64(runtime.NumCPU()))
		b.ReportMetric(ceiling, "ceiling")
		fmt.Printf("%s: CPU per run (every process): bridged %.1f ms, direct %.1f ms; ratio ceiling on %d cores %.2f\n",
			b.Name(), ms(bridged.cpu)/n, ms(direct.cpu)/n, runtime.NumCPU(), ceiling)
	}
}

// span is what timed runs took: wall time, and the CPU time that the whole
// machine (this process, PostgreSQL, a broker in its own process) was
// busy meanwhile, zero where machineBusy cannot tell.
type span struct{ wall, cpu time.Duration }

func (s span) add(t span) span { return span{s.wall + t.wall, s.cpu + t.cpu} }

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// stopwatch times one run.
type stopwatch struct {
	start time.Time
	busy  time.Duration
}

func startWatch() stopwatch { return stopwatch{start: time.Now(), busy: machineBusy()} }

func (w stopwatch) stop() span {
	busy := machineBusy()
	return span{wall: time.Since(w.start), cpu: max(busy-w.busy, 0)}
}

// machineBusy returns the CPU time every core has spent busy since boot,
// from the first line of Linux's /proc/stat (user, nice, system, irq and
// softirq, in 10 ms ticks), or 0 elsewhere.
func machineBusy() time.Duration {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(data), "\n")
	fields := strings.Fields(line)
	if len(fields) < 8 || fields[0] != "cpu" {
		return 0
	}
	var ticks int64
	for _, i := range []int{1, 2, 3, 6, 7} { // user nice system (idle iowait) irq softirq
		v, err := strconv.ParseInt(fields[i], 10, 64)
		if err != nil {
			return 0
		}
		ticks += v
	}
	return time.Duration(ticks) * 10 * time.Millisecond
}

// publishDirect publishes the messages in the batches the bridge would use.
func publishDirect(b *testing.B, sink bridge.Sink, msgs []bridge.Message) span {
	b.Helper()
	per := len(msgs) * benchBatch / (benchImages * 3)
	watch := startWatch()
	for i := 0; i < len(msgs); i += per {
		if err := sink.Publish(context.Background(), msgs[i:min(i+per, len(msgs))]); err != nil {
			b.Fatal(err)
		}
	}
	return watch.stop()
}

// runBridge bridges the whole log from the start and returns what it
// took: until the checkpoint that covers the log's last event is stored.
// The store tells when (rather than a poll of the bridge's lag, whose
// queries compete with the bridge for the CPU).
func runBridge(b *testing.B, w *world, sink bridge.Sink) span {
	b.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	store := &watchedStore{Store: w.store, until: w.last(), reached: make(chan struct{})}
	br := &bridge.Bridge{Store: store, Sink: sink, Mapper: w.mapper, BatchSize: benchBatch, Logger: quietLogger()}
	r := &eventstore.Runner{Store: store, Holder: uuid.NewString(), Logger: quietLogger()}
	if err := w.store.SaveCheckpoint(ctx, eventstore.CheckpointKey{Subscription: br.Name()}, 0, eventstore.Position{}); err != nil {
		b.Fatal(err)
	}
	watch := startWatch()
	done := make(chan struct{})
	go func() { defer close(done); _ = br.Run(ctx, r) }()
	select {
	case <-store.reached:
	case <-time.After(time.Minute):
		b.Fatal("the bridge did not reach the end of the log in a minute")
	}
	elapsed := watch.stop()
	cancel()
	<-done
	return elapsed
}

// watchedStore closes reached once a checkpoint at or after until is stored.
type watchedStore struct {
	eventstore.Store
	until   eventstore.Position
	once    sync.Once
	reached chan struct{}
}

func (s *watchedStore) SaveCheckpoint(ctx context.Context, key eventstore.CheckpointKey, epoch int64, pos eventstore.Position) error {
	err := s.Store.SaveCheckpoint(ctx, key, epoch, pos)
	if err == nil && !pos.Less(s.until) {
		s.once.Do(func() { close(s.reached) })
	}
	return err
}

// appendBenchLog appends benchImages image streams of three events.
func appendBenchLog(b *testing.B, w *world) {
	ctx := context.Background()
	for i := range benchImages {
		id := uuid.New()
		dither := uuid.New()
		evs := []images.Event{
			images.ImageUploaded{ImageID: id, Filename: fmt.Sprintf("b%d.png", i), ContentType: "image/png", SHA256: fmt.Sprintf("%064x", i)},
			images.DitherRequested{DitherID: dither, DitherOptions: images.DitherOptions{Levels: 2, Algorithm: "floyd-steinberg"}},
			images.DitherCompleted{DitherID: dither, ResultKey: fmt.Sprintf("%064x", i+1<<40)},
		}
		var news []eventstore.NewEvent
		for _, e := range evs {
			typ, sv, data, err := images.Marshal(e)
			if err != nil {
				b.Fatal(err)
			}
			news = append(news, eventstore.NewEvent{ID: eventstore.NewEventID(), Type: typ, SchemaVersion: sv, Data: data})
		}
		if _, err := w.store.Append(ctx, images.StreamID(id), eventstore.NoStream, news...); err != nil {
			b.Fatal(err)
		}
	}
}
