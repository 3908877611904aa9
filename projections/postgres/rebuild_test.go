package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imageservice/imageservice/eventstore"
	"github.com/imageservice/imageservice/projections/postgres"
	"github.com/imageservice/imageservice/projections/projectiontest"
)

// TestRebuildWhileReading rebuilds under a live projector while a reader
// keeps querying: the reader only ever sees the complete model, the
// rebuilt model equals the incremental one, and the live projector
// carries on afterwards.
func TestRebuildWhileReading(t *testing.T) {
	t.Parallel()
	e := newEnv(t, postgres.WithRebuildBatchSize(5))
	e.StartProjector(t)
	all, active := projectiontest.Seed(t, e.Env, 30)
	e.WaitFor(t, projectiontest.LastPos(all...))
	before, indexes, oid := e.Snapshot(t, projectiontest.IDs(all...)), indexNames(t, e), tableOID(t, e)

	stopReader, readerResult := e.ReadContinuously(t, active)
	var calls [][2]int64
	progress := func(done, total int64, rate float64) { calls = append(calls, [2]int64{done, total}) }
	runner := &eventstore.Runner{Holder: "test", LeaseTTL: 3 * time.Second}
	if err := e.model.Rebuild(context.Background(), runner, progress); err != nil {
		t.Fatal(err)
	}
	stopReader()
	if reads, err := readerResult(); err != nil || reads == 0 {
		t.Errorf("reader during rebuild: %d reads, %v", reads, err)
	}
	if after := e.Snapshot(t, projectiontest.IDs(all...)); !reflect.DeepEqual(after, before) {
		t.Errorf("rebuilt model differs from the incremental one")
	}
	if got := indexNames(t, e); !slices.Equal(got, indexes) {
		t.Errorf("indexes after rebuild %v, want %v", got, indexes)
	}
	if tableOID(t, e) == oid {
		t.Errorf("image_view was not replaced")
	}
	projectiontest.CheckProgress(t, calls, 5)
	if cp := e.Checkpoint(t); cp != projectiontest.LastPos(all...) {
		t.Errorf("checkpoint after rebuild %s, want %s", cp, projectiontest.LastPos(all...))
	}
	next := e.Upload(t, t0.Add(time.Hour), 1)
	e.WaitFor(t, next.Pos) // the live projector resumed
}

// indexNames lists the read models' indexes.
func indexNames(t *testing.T, e *env) []string {
	t.Helper()
	rows, err := e.pool.Query(context.Background(), `SELECT tablename || '.' || indexname FROM pg_indexes
WHERE schemaname = current_schema() AND tablename IN ('image_view', 'dither_view') ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		names = append(names, n)
	}
	if len(names) != 6 {
		t.Errorf("indexes %v: want 6", names)
	}
	return names
}

// tableOID returns the oid of image_view.
func tableOID(t *testing.T, e *env) uint32 {
	t.Helper()
	var oid uint32
	if err := e.pool.QueryRow(context.Background(), `SELECT 'image_view'::regclass::oid`).Scan(&oid); err != nil {
		t.Fatal(err)
	}
	return oid
}

// TestRebuildEmptyLogTwice: rebuilds of an empty log succeed, and repeated
// rebuilds keep the index names.
func TestRebuildEmptyLogTwice(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	indexes := indexNames(t, e)
	for range 2 {
		var last [2]int64
		if err := e.model.Rebuild(context.Background(), nil, func(done, total int64, _ float64) {
			last = [2]int64{done, total}
		}); err != nil {
			t.Fatal(err)
		}
		if last != [2]int64{0, 0} {
			t.Errorf("progress of an empty rebuild ended at %v", last)
		}
	}
	if got := indexNames(t, e); !slices.Equal(got, indexes) {
		t.Errorf("indexes after rebuilds %v, want %v", got, indexes)
	}
	page, err := e.model.Images(context.Background(), 10, "")
	if err != nil || len(page.Items) != 0 {
		t.Errorf("Images after empty rebuild = %+v, %v", page, err)
	}
}

// TestConcurrentRebuilds: a rebuild waits for another one instead of
// taking its lease; both complete.
func TestConcurrentRebuilds(t *testing.T) {
	t.Parallel()
	e := newEnv(t, postgres.WithRebuildBatchSize(3))
	e.StartProjector(t)
	all, _ := projectiontest.Seed(t, e.Env, 8)
	e.WaitFor(t, projectiontest.LastPos(all...))
	before := e.Snapshot(t, projectiontest.IDs(all...))
	errs := make(chan error, 2)
	for i := range 2 {
		go func() {
			errs <- e.model.Rebuild(context.Background(), &eventstore.Runner{Holder: fmt.Sprint("r", i), LeaseTTL: 3 * time.Second}, nil)
		}()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if after := e.Snapshot(t, projectiontest.IDs(all...)); !reflect.DeepEqual(after, before) {
		t.Errorf("model after concurrent rebuilds differs")
	}
}

// newProjectedEnv returns an env, rebuilding in batches of two, whose
// live projector has applied a seeded log of three images.
func newProjectedEnv(t *testing.T) (*env, []*projectiontest.Image) {
	t.Helper()
	e := newEnv(t, postgres.WithRebuildBatchSize(2))
	e.StartProjector(t)
	all, _ := projectiontest.Seed(t, e.Env, 3)
	e.WaitFor(t, projectiontest.LastPos(all...))
	return e, all
}

// TestRebuildLosingLeaseKeepsModel: a rebuild whose lease is taken over
// before the swap fails and leaves the live model and checkpoint alone.
func TestRebuildLosingLeaseKeepsModel(t *testing.T) {
	t.Parallel()
	e, all := newProjectedEnv(t)
	oid, cp := tableOID(t, e), e.Checkpoint(t)
	steal := func(int64, int64, float64) {
		_, err := e.pool.Exec(context.Background(), `UPDATE leases SET epoch = epoch + 1 WHERE subscription = $1`, e.model.Name())
		if err != nil {
			t.Error(err)
		}
	}
	err := e.model.Rebuild(context.Background(), &eventstore.Runner{LeaseTTL: 3 * time.Second}, steal)
	if !errors.Is(err, eventstore.ErrLeaseLost) {
		t.Fatalf("Rebuild = %v, want ErrLeaseLost", err)
	}
	if tableOID(t, e) != oid || e.Checkpoint(t) != cp {
		t.Errorf("a failed rebuild replaced the model or moved the checkpoint")
	}
	if _, err := e.model.Image(context.Background(), all[0].State.ID); err != nil {
		t.Error(err)
	}
}

// TestRebuildStopsAtLocalDeadline: a rebuild whose lease renewals keep
// failing, without the database ever refusing one, stops at the lease's
// local deadline, with an error that wraps ErrLeaseLost, instead of
// swapping its model in under a lease that is about to expire: the live
// model and the checkpoint stay as they were.
func TestRebuildStopsAtLocalDeadline(t *testing.T) {
	t.Parallel()
	e, _ := newProjectedEnv(t)
	oid, cp := tableOID(t, e), e.Checkpoint(t)
	failRenewals(t, e, math.MaxInt64)
	var deadline atomic.Pointer[time.Time] // the lease's latest local deadline
	onLease := func(_ eventstore.Lease, d time.Time) { deadline.Store(&d) }
	var waited atomic.Bool
	pastDeadline := func(int64, int64, float64) {
		if !waited.CompareAndSwap(false, true) {
			return
		}
		if deadline.Load() == nil {
			t.Fatal("OnLease was not called with the lease granted")
		}
		// No renewal gets through, so the deadline of the grant stays.
		for d := *deadline.Load(); time.Now().Before(d); d = *deadline.Load() {
			time.Sleep(time.Until(d) + time.Millisecond)
		}
	}
	err := e.model.Rebuild(context.Background(), &eventstore.Runner{LeaseTTL: time.Second, OnLease: onLease}, pastDeadline)
	if !errors.Is(err, eventstore.ErrLeaseLost) || !strings.Contains(err.Error(), "local deadline") {
		t.Fatalf("Rebuild = %v, want ErrLeaseLost at the local deadline", err)
	}
	if tableOID(t, e) != oid || e.Checkpoint(t) != cp {
		t.Errorf("a rebuild past its lease's local deadline replaced the model or moved the checkpoint")
	}
}

// TestRebuildRenewalRetried: renewals of a rebuild's lease that fail once,
// or twice in a row, and then get through do not stop the rebuild: it
// retries them before the lease's local deadline and swaps its model in.
func TestRebuildRenewalRetried(t *testing.T) {
	t.Parallel()
	for _, failures := range []int64{1, 2} {
		t.Run(fmt.Sprint(failures), func(t *testing.T) {
			t.Parallel()
			e, all := newProjectedEnv(t)
			oid := tableOID(t, e)
			failRenewals(t, e, failures)
			leases := make(chan eventstore.Lease, 100) // granted, then renewed
			onLease := func(l eventstore.Lease, _ time.Time) { leases <- l }
			var waited atomic.Bool
			untilRenewed := func(int64, int64, float64) {
				if !waited.CompareAndSwap(false, true) {
					return
				}
				granted := receiveLease(t, leases)
				if renewed := receiveLease(t, leases); renewed.Epoch != granted.Epoch {
					t.Errorf("renewed epoch %d, want %d", renewed.Epoch, granted.Epoch)
				}
			}
			runner := &eventstore.Runner{LeaseTTL: 3 * time.Second, OnLease: onLease}
			if err := e.model.Rebuild(context.Background(), runner, untilRenewed); err != nil {
				t.Fatal(err)
			}
			if attempts := renewalAttempts(t, e); attempts <= failures {
				t.Errorf("%d renewals attempted, want more than the %d that failed", attempts, failures)
			}
			if tableOID(t, e) == oid || e.Checkpoint(t) != projectiontest.LastPos(all...) {
				t.Errorf("the rebuild did not swap its model in")
			}
		})
	}
}

// receiveLease returns the next lease OnLease was called with.
func receiveLease(t *testing.T, leases <-chan eventstore.Lease) eventstore.Lease {
	t.Helper()
	select {
	case l := <-leases:
		return l
	case <-time.After(time.Minute):
		t.Fatal("timed out after 1m0s waiting for a lease to be granted or renewed")
		return eventstore.Lease{}
	}
}

// failRenewals makes the database fail the first n renewals of a
// rebuild's lease with an error, as when they do not get through, without
// refusing them; renewalAttempts counts them all.
func failRenewals(t *testing.T, e *env, n int64) {
	t.Helper()
	_, err := e.pool.Exec(context.Background(), fmt.Sprintf(`CREATE SEQUENCE renewal_attempts;
CREATE FUNCTION fail_renewal() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF nextval('renewal_attempts') <= %d THEN
		RAISE EXCEPTION 'test: renewal %% did not get through', currval('renewal_attempts');
	END IF;
	RETURN NEW;
END $$;
CREATE TRIGGER fail_renewal BEFORE UPDATE ON leases FOR EACH ROW
WHEN (OLD.holder LIKE 'rebuild:%%' AND NEW.holder = OLD.holder AND NEW.epoch = OLD.epoch AND NEW.expires_at > OLD.expires_at)
EXECUTE FUNCTION fail_renewal();`, n))
	if err != nil {
		t.Fatal(err)
	}
}

// renewalAttempts returns the number of renewals of a rebuild's lease
// attempted since failRenewals.
func renewalAttempts(t *testing.T, e *env) int64 {
	t.Helper()
	var n int64
	var called bool
	if err := e.pool.QueryRow(context.Background(), `SELECT last_value, is_called FROM renewal_attempts`).Scan(&n, &called); err != nil {
		t.Fatal(err)
	}
	if !called {
		return 0
	}
	return n
}
