package testwait_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sync/semaphore"

	"github.com/imageservice/imageservice/internal/testwait"
)

func TestUntilReturnsOnceTheConditionHolds(t *testing.T) {
	var calls atomic.Int32
	testwait.Until(t, time.Minute, "the third call", func() bool { return calls.Add(1) == 3 })
	if n := calls.Load(); n != 3 {
		t.Fatalf("cond called %d times, want 3", n)
	}
}

// failing records a Fatalf instead of stopping the test.
type failing struct {
	testing.TB
	msg string
}

func (f *failing) Helper() {}
func (f *failing) Fatalf(format string, args ...any) {
	f.msg = format
	panic(f)
}

func TestUntilFailsAfterWithin(t *testing.T) {
	f := &failing{TB: t}
	defer func() {
		if r := recover(); r != f || f.msg == "" {
			t.Fatalf("Until did not fail the test: recovered %v", r)
		}
	}()
	testwait.Until(f, 20*time.Millisecond, "never", func() bool { return false })
}

// Reserves passes work that takes exactly what it is said to reserve, and
// fails work that takes less (it goes through with one fewer free).
func TestReserves(t *testing.T) {
	sem := semaphore.NewWeighted(10)
	take := func(n int64) func() error {
		return func() error {
			if err := sem.Acquire(context.Background(), n); err != nil {
				return err
			}
			sem.Release(n)
			return nil
		}
	}
	testwait.Reserves(t, sem, 10, 4, "taking 4", take(4))
	if !sem.TryAcquire(10) {
		t.Fatal("Reserves did not give back what it held")
	}
	sem.Release(10)
	f := &failing{TB: t}
	defer func() {
		if r := recover(); r != f || !strings.Contains(f.msg, "went through") {
			t.Fatalf("Reserves did not fail work taking 3 of 4: recovered %v, %q", r, f.msg)
		}
	}()
	testwait.Reserves(f, sem, 10, 4, "taking 3", take(3))
}
