package server

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/imageservice/imageservice/eventstore"
	"github.com/imageservice/imageservice/projections"
)

// blobUses is a read model whose BlobUse answers use (or err), counting
// the questions.
type blobUses struct {
	ReadModel // not called
	use       projections.BlobUse
	err       error
	asked     int
}

func (b *blobUses) BlobUse(context.Context, string) (projections.BlobUse, error) {
	b.asked++
	return b.use, b.err
}

// lagging is a log whose head is head and whose checkpoints are all cp.
type lagging struct {
	eventstore.Store // not called
	cp, head         eventstore.Position
}

func (l lagging) Checkpoint(context.Context, eventstore.CheckpointKey) (eventstore.Position, error) {
	return l.cp, nil
}

func (l lagging) Head(context.Context) (eventstore.Position, time.Time, error) {
	return l.head, time.Time{}, nil
}

func (l lagging) ReadAll(context.Context, eventstore.Position, int) ([]eventstore.Event, error) {
	return []eventstore.Event{{Position: l.head, RecordedAt: time.Now()}}, nil
}

// TestWithdrawn: a blob is withdrawn only when every image using it is
// deleted and the read model has caught up with the log; a blob in use is
// not asked about again for a while; an error is passed on.
func TestWithdrawn(t *testing.T) {
	head := eventstore.Position{TransactionID: 9, Global: 9}
	behind := eventstore.Position{TransactionID: 5, Global: 5}
	for _, c := range []struct {
		name  string
		use   projections.BlobUse
		err   error
		cp    eventstore.Position
		want  bool
		again int // questions after a second call
	}{
		{"in use", projections.BlobUse{Live: 1, Deleted: 1}, nil, head, false, 1},
		{"unknown to the model", projections.BlobUse{}, nil, head, false, 1},
		{"every user deleted", projections.BlobUse{Deleted: 2}, nil, head, true, 2},
		{"every user deleted, the model behind", projections.BlobUse{Deleted: 2}, nil, behind, false, 2},
		{"the model fails", projections.BlobUse{}, errors.New("down"), head, false, 2},
	} {
		reads := &blobUses{use: c.use, err: c.err}
		s := &Server{st: storage{reads: reads, store: lagging{cp: c.cp, head: head}}}
		got, err := s.withdrawn(context.Background(), "k")
		if got != c.want || (err != nil) != (c.err != nil) {
			t.Errorf("%s: withdrawn = %t, %v; want %t", c.name, got, err, c.want)
		}
		_, _ = s.withdrawn(context.Background(), "k")
		if reads.asked != c.again {
			t.Errorf("%s: the read model was asked %d times in two calls, want %d", c.name, reads.asked, c.again)
		}
	}
}
