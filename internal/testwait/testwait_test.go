package testwait_test

import (
	"sync/atomic"
	"testing"
	"time"

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
