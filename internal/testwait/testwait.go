// Package testwait waits in tests for a condition that other goroutines
// or processes make true, without depending on how long they take, and
// for work to queue for a semaphore.
package testwait

import (
	"context"
	"fmt"
	"testing"
	"time"

	"golang.org/x/sync/semaphore"
)

// Until calls cond every few milliseconds until it returns true, and
// fails the test, naming what it waited for, once within has passed.
func Until(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Reserves checks that run, which acquires of sem (of size size), takes
// exactly reserve of it at once: while all but reserve is held, run
// returns; while one more is held, it waits for sem (it neither returns
// nor stops waiting, however long it takes) until they are given back.
// run must return nil; what names it in failures.
func Reserves(t testing.TB, sem *semaphore.Weighted, size, reserve int64, what string, run func() error) {
	t.Helper()
	ctx := context.Background()
	if err := sem.Acquire(ctx, size-reserve); err != nil {
		t.Fatalf("hold all but %d: %v", reserve, err)
	}
	if err := run(); err != nil {
		t.Fatalf("%s, with %d free: %v", what, reserve, err)
	}
	if err := sem.Acquire(ctx, 1); err != nil {
		t.Fatalf("hold one more: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- run() }()
	Until(t, time.Minute, fmt.Sprintf("%s to wait for %d", what, reserve), func() bool {
		select {
		case err := <-done:
			sem.Release(size - reserve + 1)
			t.Fatalf("%s went through with %d free (err %v)", what, reserve-1, err)
		default:
		}
		if sem.TryAcquire(1) { // nothing waits yet
			sem.Release(1)
			return false
		}
		return true
	})
	sem.Release(size - reserve + 1)
	if err := <-done; err != nil {
		t.Fatalf("%s, once the rest was given back: %v", what, err)
	}
}
