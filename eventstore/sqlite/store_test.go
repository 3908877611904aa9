package sqlite_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/imageservice/imageservice/eventstore"
	"github.com/imageservice/imageservice/eventstore/sqlite"
)

func event(n int) eventstore.NewEvent {
	return eventstore.NewEvent{
		ID: eventstore.NewEventID(), Type: "E", SchemaVersion: 1,
		Data:     json.RawMessage(fmt.Sprintf(`{"n": %d}`, n)),
		Metadata: eventstore.Metadata{Actor: "test"},
	}
}

func TestReopenKeepsEventsAndMigrationsAreIdempotent(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "events.db")
	if err := sqlite.Migrate(ctx, path); err != nil {
		t.Fatal(err)
	}
	if pending, err := sqlite.Pending(ctx, path); err != nil || pending {
		t.Fatalf("Pending after Migrate = %v, %v", pending, err)
	}
	s, err := sqlite.Open(ctx, path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.Append(ctx, "s", eventstore.NoStream, event(1), event(2))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = sqlite.Open(ctx, path, sqlite.Options{Synchronous: "normal"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.ReadAll(ctx, eventstore.Position{}, 10)
	if err != nil || len(got) != 2 || got[1].Position != res.Positions[1] {
		t.Fatalf("after reopening: %d events, %v", len(got), err)
	}
	if _, err := s.Append(ctx, "s", eventstore.Exact(2), event(3)); err != nil {
		t.Fatalf("append after reopening: %v", err)
	}
}

func TestPositionsHaveNoTransactionID(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	res, err := s.Append(ctx, "s", eventstore.Any, event(1), event(2))
	if err != nil {
		t.Fatal(err)
	}
	if res.Positions[0] != (eventstore.Position{Global: 1}) || res.Positions[1] != (eventstore.Position{Global: 2}) {
		t.Fatalf("positions = %v, want 0/1 and 0/2", res.Positions)
	}
	head, _, err := s.Head(ctx)
	if err != nil || head != res.Positions[1] {
		t.Fatalf("Head = %s, %v", head, err)
	}
	_, err = s.ReadAll(ctx, eventstore.Position{TransactionID: 7, Global: 1}, 10)
	if !errors.Is(err, sqlite.ErrForeignPosition) {
		t.Fatalf("ReadAll after a PostgreSQL position: %v, want ErrForeignPosition", err)
	}
}

// TestInTx: events, a checkpoint and the caller's own writes commit
// together or not at all, and a commit wakes readers.
func TestInTx(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	key := eventstore.CheckpointKey{Subscription: "proj"}
	write := func(tx *sql.Tx, n int) error {
		if _, err := s.AppendTx(ctx, tx, "s", eventstore.Any, event(n)); err != nil {
			return err
		}
		return s.SaveCheckpointTx(ctx, tx, eventstore.Checkpoint{Key: key, Position: eventstore.Position{Global: int64(n)}})
	}
	boom := errors.New("boom")
	err := s.InTx(ctx, func(tx *sql.Tx) error {
		if err := write(tx, 1); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("InTx = %v, want the function's error", err)
	}
	if events, _ := s.ReadAll(ctx, eventstore.Position{}, 10); len(events) != 0 {
		t.Fatalf("a rolled back transaction wrote %d events", len(events))
	}
	if cp, _ := s.Checkpoint(ctx, key); cp != (eventstore.Position{}) {
		t.Fatalf("a rolled back transaction stored checkpoint %s", cp)
	}
	changed := s.Changed()
	if err := s.InTx(ctx, func(tx *sql.Tx) error { return write(tx, 2) }); err != nil {
		t.Fatal(err)
	}
	select {
	case <-changed:
	default:
		t.Fatal("InTx did not wake readers")
	}
	if cp, _ := s.Checkpoint(ctx, key); cp.Global != 2 {
		t.Fatalf("checkpoint = %s, want 0/2", cp)
	}
	// A stale lease epoch is refused inside the transaction too.
	stale := eventstore.Checkpoint{Key: key, Epoch: 5, Position: eventstore.Position{Global: 3}}
	err = s.InTx(ctx, func(tx *sql.Tx) error { return s.SaveCheckpointTx(ctx, tx, stale) })
	if !errors.Is(err, eventstore.ErrLeaseLost) {
		t.Fatalf("fenced checkpoint in InTx = %v, want ErrLeaseLost", err)
	}
}

// TestWaitingWriterHonoursContext: a writer waiting for the single writer
// connection gives up when its context ends.
func TestWaitingWriterHonoursContext(t *testing.T) {
	s := newStore(t)
	tx, err := s.BeginForTest(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if _, err := s.Append(ctx, "s", eventstore.Any, event(1)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Append while the writer is held = %v, want the deadline", err)
	}
	if _, err := s.AcquireLease(ctx, eventstore.CheckpointKey{Subscription: "x"}, "h", time.Second); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("AcquireLease while the writer is held = %v, want the deadline", err)
	}
	// Reads go on while the writer is held.
	if _, err := s.ReadAll(t.Context(), eventstore.Position{}, 10); err != nil {
		t.Fatalf("ReadAll while the writer is held: %v", err)
	}
}

// TestLargeBatch: a batch larger than one statement's chunk is written in
// order and retried as a duplicate.
func TestLargeBatch(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	events := make([]eventstore.NewEvent, 1234)
	for i := range events {
		events[i] = event(i)
	}
	res, err := s.Append(ctx, "big", eventstore.NoStream, events...)
	if err != nil {
		t.Fatal(err)
	}
	if res.StreamVersion != 1234 || len(res.Positions) != 1234 {
		t.Fatalf("append: version %d, %d positions", res.StreamVersion, len(res.Positions))
	}
	again, err := s.Append(ctx, "big", eventstore.NoStream, events...)
	if err != nil || !again.Duplicate || again.Positions[1233] != res.Positions[1233] {
		t.Fatalf("retry = %v, %v; want a duplicate", again.Duplicate, err)
	}
	got, err := s.ReadStream(ctx, "big", 0, 2000)
	if err != nil || len(got) != 1234 {
		t.Fatalf("ReadStream: %d events, %v", len(got), err)
	}
	for i, e := range got {
		if e.ID != events[i].ID || e.Position != res.Positions[i] || e.StreamVersion != int64(i+1) {
			t.Fatalf("event %d: %s at %s version %d", i, e.ID, e.Position, e.StreamVersion)
		}
	}
}

func TestOpen(t *testing.T) {
	dir := t.TempDir()
	if _, err := sqlite.Open(t.Context(), filepath.Join(dir, "a.db"), sqlite.Options{Synchronous: "OFF"}); err == nil {
		t.Error("Open accepted synchronous=OFF")
	}
	if _, err := sqlite.Open(t.Context(), filepath.Join(dir, "missing", "a.db"), sqlite.Options{}); err == nil {
		t.Error("Open succeeded in a missing directory")
	}
	odd := filepath.Join(dir, "odd?name#1%20.db")
	s, err := sqlite.Open(t.Context(), odd, sqlite.Options{})
	if err != nil {
		t.Fatalf("Open(%s): %v", odd, err)
	}
	defer s.Close()
	if _, err := s.Append(t.Context(), "s", eventstore.Any, event(1)); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(odd); err != nil {
		t.Fatalf("the file is not where it was asked for: %v", err)
	}
}
