// Package testwait waits in tests for a condition that other goroutines
// or processes make true, without depending on how long they take.
package testwait

import (
	"testing"
	"time"
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
