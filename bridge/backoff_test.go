package bridge

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/imageservice/imageservice/eventstore"
	"github.com/imageservice/imageservice/images"
)

// failingSink fails its first n publishes.
type failingSink struct{ n, calls int }

func (*failingSink) Name() string { return "failing" }
func (*failingSink) Close() error { return nil }
func (s *failingSink) Publish(context.Context, []Message) error {
	s.calls++
	if s.calls <= s.n {
		return errors.New("broker down")
	}
	return nil
}

// TestBackoffGrowsAndResets checks that consecutive failures wait longer
// and longer (up to the cap) before the runner re-delivers, and that a
// success starts over.
func TestBackoffGrowsAndResets(t *testing.T) {
	sink := &failingSink{n: 6}
	var waits []time.Duration
	b := &Bridge{Sink: sink, MinBackoff: 100 * time.Millisecond, MaxBackoff: time.Second,
		sleep: func(_ context.Context, d time.Duration) error { waits = append(waits, d); return nil }}
	events := []eventstore.Event{event(t, images.ImageUploaded{ImageID: testImage}, 1)}
	msgs, err := b.prepare(context.Background(), events)
	if err != nil {
		t.Fatal(err)
	}
	batch := eventstore.Batch{Events: events, Prepared: msgs}
	for range 6 {
		if err := b.handle(context.Background(), batch); err == nil {
			t.Fatal("a failed publish returned nil")
		}
	}
	if err := b.handle(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	sink.n, sink.calls = 1, 0
	_ = b.handle(context.Background(), batch)
	want := []time.Duration{100, 200, 400, 800, 1000, 1000, 100}
	if len(waits) != len(want) {
		t.Fatalf("waits %v, want %v ms", waits, want)
	}
	for i := range want {
		if waits[i] != want[i]*time.Millisecond {
			t.Errorf("wait %d is %v, want %v", i, waits[i], want[i]*time.Millisecond)
		}
	}
}

// TestObservePublish: the observer hears of every batch, failed or not,
// with its messages.
func TestObservePublish(t *testing.T) {
	type call struct {
		sink     string
		messages int
		failed   bool
	}
	var calls []call
	b := &Bridge{Sink: &failingSink{n: 1}, sleep: func(context.Context, time.Duration) error { return nil },
		ObservePublish: func(sink string, messages int, d time.Duration, err error) {
			calls = append(calls, call{sink, messages, err != nil})
		}}
	events := []eventstore.Event{event(t, images.ImageUploaded{ImageID: testImage}, 1)}
	prepared, err := b.prepare(context.Background(), events)
	if err != nil {
		t.Fatal(err)
	}
	n := len(prepared.(*buffers).msgs)
	batch := eventstore.Batch{Events: events, Prepared: prepared}
	_ = b.handle(context.Background(), batch)
	if err := b.handle(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	want := []call{{"failing", n, true}, {"failing", n, false}}
	if len(calls) != 2 || calls[0] != want[0] || calls[1] != want[1] {
		t.Fatalf("observed %+v, want %+v", calls, want)
	}
}
