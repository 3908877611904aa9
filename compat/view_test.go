package compat

import (
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/imageservice/imageservice/images"
)

func TestOldIDIsStableAndPositive(t *testing.T) {
	seen := map[int64]bool{}
	for range 10000 {
		id := uuid.New()
		n := OldID(id)
		if n <= 0 || n >= 1<<53 || n != OldID(id) {
			t.Fatalf("OldID(%s) = %d (again %d)", id, n, OldID(id))
		}
		seen[n] = true
	}
	if len(seen) != 10000 {
		t.Fatalf("%d distinct ids for 10000 uuids", len(seen))
	}
}

// The old status of each combination of dither outcomes.
func TestStatusMapping(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	done := func(url string, at time.Duration) ditherRecord {
		return ditherRecord{status: images.DitherStatusCompleted, url: url, completedAt: t0.Add(at)}
	}
	pending := ditherRecord{status: images.DitherStatusPending}
	failed := ditherRecord{status: images.DitherStatusFailed, completedAt: t0}
	for _, c := range []struct {
		name         string
		dithers      []ditherRecord
		status, want string
	}{
		{"no dither requested", nil, StatusPending, ""},
		{"pending", []ditherRecord{pending}, StatusPending, ""},
		{"failed then pending", []ditherRecord{failed, pending}, StatusPending, ""},
		{"all failed", []ditherRecord{failed, failed}, StatusDitherDeleted, ""},
		{"completed", []ditherRecord{done("a", 0)}, StatusFinished, "a"},
		{"completed, then one pending", []ditherRecord{done("a", 0), pending}, StatusFinished, "a"},
		{"completed, then one failed", []ditherRecord{done("a", 0), failed}, StatusFinished, "a"},
		{"latest completion wins", []ditherRecord{done("later", 2*time.Second), done("earlier", time.Second)}, StatusFinished, "later"},
	} {
		status, url := record{dithers: c.dithers}.status()
		if status != c.status || url != c.want {
			t.Errorf("%s: status %s %q, want %s %q", c.name, status, url, c.status, c.want)
		}
	}
}
