package live_test

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imageservice/imageservice/eventstore"
	espg "github.com/imageservice/imageservice/eventstore/postgres"
	"github.com/imageservice/imageservice/eventstore/sqlite"
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

	slow, err := hub.Subscribe(ctx, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	fast, err := hub.Subscribe(ctx, "s-1", nil)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := hub.Subscribe(ctx, "s-2", nil)
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

// downStore is a store whose reads of the log fail while down is set, as
// during a database outage.
type downStore struct {
	eventstore.Store
	down atomic.Bool
}

func (s *downStore) ReadAll(ctx context.Context, after eventstore.Position, limit int) ([]eventstore.Event, error) {
	if s.down.Load() {
		return nil, errors.New("the database is down")
	}
	return s.Store.ReadAll(ctx, after, limit)
}

// A hub restarted after a failed read (the server restarts it) resumes
// where it stopped: its subscribers get the events appended meanwhile.
func TestHubResumesAfterAFailure(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	inner, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "events.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer inner.Close()
	store := &downStore{Store: inner}
	appendOne := func() {
		t.Helper()
		if _, err := store.Append(ctx, "s-1", eventstore.Any, eventstore.NewEvent{
			ID: eventstore.NewEventID(), Type: "T", Data: json.RawMessage(`{}`)}); err != nil {
			t.Fatal(err)
		}
	}
	hub := live.NewHub(store, 0)
	stopped := make(chan error, 1)
	go func() { stopped <- hub.Run(ctx) }()
	sub, err := hub.Subscribe(ctx, "s-1", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	// Wait until the hub follows: append until the feed hears of it.
	var seen int64
	for seen == 0 {
		appendOne()
		waitCtx, stop := context.WithTimeout(ctx, 200*time.Millisecond)
		e, err := sub.Next(waitCtx)
		stop()
		if err == nil {
			seen = e.StreamVersion
		}
	}
	for { // drain what the probing appended
		waitCtx, stop := context.WithTimeout(ctx, 200*time.Millisecond)
		e, err := sub.Next(waitCtx)
		stop()
		if err != nil {
			break
		}
		seen = e.StreamVersion
	}

	store.down.Store(true)
	appendOne() // wakes the hub, whose read fails
	if err := <-stopped; err == nil || ctx.Err() != nil {
		t.Fatalf("Run returned %v, want the read error", err)
	}
	appendOne()
	appendOne()
	store.down.Store(false)
	go func() { _ = hub.Run(ctx) }()
	for want := seen + 1; want <= seen+3; want++ {
		e, err := sub.Next(ctx)
		if err != nil || e.StreamVersion != want {
			t.Fatalf("after the restart: version %d, %v; want %d (events appended while the hub was down are lost)", e.StreamVersion, err, want)
		}
	}
}

// A subscription made while the hub is not running yet gets every event
// appended once Subscribe returned: the hub fixes where it follows the log
// from before any feed is registered.
func TestSubscribeBeforeTheHubRuns(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "events.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	hub := live.NewHub(store, 0)
	subscribed := make(chan *live.Subscription, 1)
	go func() {
		sub, err := hub.Subscribe(ctx, "s-1", nil)
		if err != nil {
			t.Error(err)
		}
		subscribed <- sub
	}()
	appendOne := func() {
		t.Helper()
		if _, err := store.Append(ctx, "s-1", eventstore.Any, eventstore.NewEvent{
			ID: eventstore.NewEventID(), Type: "T", Data: json.RawMessage(`{}`)}); err != nil {
			t.Fatal(err)
		}
	}
	var sub *live.Subscription
	select {
	case sub = <-subscribed: // registered before the hub ran: the event comes before it does
		appendOne()
		go func() { _ = hub.Run(ctx) }()
	case <-time.After(100 * time.Millisecond): // waiting for the hub, as it must
		go func() { _ = hub.Run(ctx) }()
		sub = <-subscribed
		appendOne()
	}
	defer sub.Close()
	waitCtx, stop := context.WithTimeout(ctx, 10*time.Second)
	defer stop()
	if _, err := sub.Next(waitCtx); err != nil {
		t.Fatalf("the event appended after subscribing never came: %v", err)
	}
}
