package live_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/imageservice/imageservice/eventstore"
	espg "github.com/imageservice/imageservice/eventstore/postgres"
	"github.com/imageservice/imageservice/internal/pgtest"
	"github.com/imageservice/imageservice/live"
)

func TestSlowSubscriberIsClosedAndOthersCarryOn(t *testing.T) {
	pool := pgtest.Pool(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := espg.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	store := espg.Open(pool, espg.Options{})
	defer store.Close()
	hub := live.NewHub(store, 2)
	go func() { _ = hub.Run(ctx) }()

	slow, err := hub.Subscribe("", nil)
	if err != nil {
		t.Fatal(err)
	}
	fast, err := hub.Subscribe("s-1", nil)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := hub.Subscribe("s-2", nil)
	// The hub follows the log from where it is when it starts: wait until
	// it is following, by appending to s-2 until that feed hears of it.
	for {
		if _, err := store.Append(ctx, "s-2", eventstore.Any, eventstore.NewEvent{
			ID: eventstore.NewEventID(), Type: "T", Data: json.RawMessage(`{}`)}); err != nil {
			t.Fatal(err)
		}
		waitCtx, stop := context.WithTimeout(ctx, 200*time.Millisecond)
		_, err := other.Next(waitCtx)
		stop()
		if err == nil {
			break
		}
	}
	for i := range 6 {
		_, err := store.Append(ctx, "s-1", eventstore.Any, eventstore.NewEvent{
			ID: eventstore.NewEventID(), Type: "T", Data: json.RawMessage(`{}`)})
		if err != nil {
			t.Fatal(err)
		}
		e, err := fast.Next(ctx) // the fast reader keeps up
		if err != nil || e.StreamVersion != int64(i+1) {
			t.Fatalf("fast subscriber: event %d = %v, %v", i, e.StreamVersion, err)
		}
	}
	for {
		_, err := slow.Next(ctx)
		if errors.Is(err, live.ErrTooSlow) {
			break
		}
		if err != nil {
			t.Fatalf("slow subscriber: %v, want ErrTooSlow", err)
		}
	}
	fast.Close()
	if _, err := fast.Next(ctx); !errors.Is(err, live.ErrClosed) {
		t.Fatalf("Next after Close = %v", err)
	}
	other.Close()
	if n := hub.Subscribers(); n != 0 {
		t.Fatalf("%d subscriptions left open", n)
	}
}
