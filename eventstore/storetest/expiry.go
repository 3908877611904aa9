package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/imageservice/imageservice/eventstore"
)

// testLeaseExpiresLocally: a runner whose renewals keep failing, without
// the store ever refusing one, stops the partition at the lease's local
// deadline: its handler's context is cancelled with a cause that wraps
// ErrLeaseLost, no batch is handed over under that lease afterwards, even
// though the handler finished its batch regardless, and the runner
// competes for the lease again, taking it with a new epoch once it has
// expired in the store.
func testLeaseExpiresLocally(t *testing.T, b Backend) {
	s := b.Store
	appendN(t, s, 6)
	for _, mode := range checkpointModes {
		name := "local-expiry-" + mode.name
		f := &faulty{Store: s}
		var mu sync.Mutex
		var epochs []int64 // the lease epoch of each handler call, in order
		stuck := make(chan lapse, 1)
		sub := pipelined(eventstore.Subscription{Name: name, Read: eventstore.ReadOptions{BatchSize: 2}})
		sub.Read.ReadAhead = mode.readAhead
		sub.Handler = func(hctx context.Context, b eventstore.Batch) error {
			mu.Lock()
			epochs = append(epochs, b.Checkpoint.Epoch)
			first := len(epochs) == 1
			mu.Unlock()
			if first {
				f.noRenew.Store(true) // from now on, as long as the handler works
				<-hctx.Done()
				stuck <- lapse{epoch: b.Checkpoint.Epoch, cause: context.Cause(hctx)}
			}
			return nil // the work is done all the same
		}
		var h handled
		r := startFaultyReplica(t, f, "one", 500*time.Millisecond, sub, &h)
		l := waitLapse(t, stuck)
		if !errors.Is(l.cause, eventstore.ErrLeaseLost) {
			t.Fatalf("%s: the handler's context ended with %v, want ErrLeaseLost", name, l.cause)
		}
		eventually(t, name+": the lease to be taken again", func() bool {
			mu.Lock()
			defer mu.Unlock()
			return epochs[len(epochs)-1] > l.epoch
		})
		r.halt()
		mu.Lock()
		for i, e := range epochs[1:] {
			if e == l.epoch {
				t.Errorf("%s: batch %d handed over under epoch %d after its local deadline", name, i+2, e)
			}
		}
		mu.Unlock()
	}
}

// testLeaseExpiresWithRenewerStalled: when the renewer itself is held up
// (the process was paused in the middle of a renewal, say), the runner
// checks the lease's local deadline before handing each batch over: past
// it, it hands nothing more over and cancels the handler's context with a
// cause that wraps ErrLeaseLost.
func testLeaseExpiresWithRenewerStalled(t *testing.T, b Backend) {
	s := b.Store
	f := &faulty{Store: s, stall: make(chan struct{})}
	var mu sync.Mutex
	var last context.Context // the context of the last handler call
	late := 0                // batches handed over with their context already cancelled
	sub := eventstore.Subscription{Name: "stalled"}
	sub.Handler = func(hctx context.Context, _ eventstore.Batch) error {
		mu.Lock()
		defer mu.Unlock()
		if hctx.Err() != nil {
			late++
		}
		last = hctx
		return nil
	}
	var h handled
	startFaultyReplica(t, f, "one", 500*time.Millisecond, sub, &h)
	t.Cleanup(func() { close(f.stall) }) // before the replica halts, or it never would
	eventually(t, "the handler's context to be cancelled", func() bool {
		appendN(t, s, 1) // a batch to hand over, or not
		mu.Lock()
		defer mu.Unlock()
		return last != nil && last.Err() != nil
	})
	mu.Lock()
	defer mu.Unlock()
	if cause := context.Cause(last); !errors.Is(cause, eventstore.ErrLeaseLost) {
		t.Fatalf("the handler's context ended with %v, want ErrLeaseLost", cause)
	}
	if late > 0 {
		t.Fatalf("%d batches handed over after the partition was stopped", late)
	}
}

// testRenewalRetried: renewals that fail once, or twice in a row, and then
// get through again do not cost the runner its lease: it retries them
// before the lease's local deadline and keeps the lease (its epoch) and
// the handler's context.
func testRenewalRetried(t *testing.T, b Backend) {
	s := b.Store
	appendN(t, s, 1)
	type call struct {
		ctx   context.Context
		epoch int64
	}
	for _, failures := range []int32{1, 2} {
		name := fmt.Sprintf("renewal-retried-%d", failures)
		f := &faulty{Store: s}
		f.failRenews.Store(failures) // the runner's first renewals
		busy := make(chan call, 1)
		release := make(chan struct{})
		sub := eventstore.Subscription{Name: name}
		sub.Handler = func(hctx context.Context, b eventstore.Batch) error {
			select {
			case busy <- call{hctx, b.Checkpoint.Epoch}:
			default:
			}
			select {
			case <-release:
			case <-hctx.Done():
			}
			return nil
		}
		var h handled
		r := startFaultyReplica(t, f, "one", 2*time.Second, sub, &h)
		var c call
		select {
		case c = <-busy:
		case <-time.After(3 * time.Minute):
			t.Fatalf("%s: timed out after 3m0s waiting for the handler", name)
		}
		eventually(t, name+": a renewal after the failures", func() bool { return len(f.renewed()) > 0 })
		if epoch := f.renewed()[0]; epoch != c.epoch {
			t.Errorf("%s: the first renewal after the failures was of epoch %d, want %d: the lease was lost", name, epoch, c.epoch)
		}
		if c.ctx.Err() != nil {
			t.Errorf("%s: the handler's context ended: %v", name, context.Cause(c.ctx))
		}
		close(release)
		r.halt()
	}
}
