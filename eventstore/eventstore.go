// Package eventstore is the event log that the whole service stands on: an
// append-only sequence of events grouped into streams, read back in one
// global order that never skips an event, with named subscriptions that
// catch up and follow the log live, checkpoints, and leases that let one
// replica at a time run a subscription.
//
// The package holds the envelope, the Store interface that every backend
// implements (one subpackage per backend, such as eventstore/postgres), and
// the backend-independent machinery built on it: Follow (catch up, then
// follow live) and Runner (leased, checkpointed subscriptions). The
// conformance suite in eventstore/storetest is what every backend must pass.
package eventstore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
)

// MaxEventSize is the largest encoded event (data plus metadata) that a
// store accepts, in bytes.
const MaxEventSize = 1 << 20

// Metadata is the context recorded with an event. Every field is optional.
type Metadata struct {
	// CorrelationID ties together every event caused by one request.
	CorrelationID string `json:"correlation_id,omitempty"`
	// CausationID is the id of the event or request that caused this one.
	CausationID string `json:"causation_id,omitempty"`
	// Actor is who caused the event: an API key name, a processor, ...
	Actor string `json:"actor,omitempty"`
	// IdempotencyKey is the client's key for the request that wrote the event.
	IdempotencyKey string `json:"idempotency_key,omitempty"`
	// TraceParent is the W3C traceparent of the span that appended the
	// event (a request's GraphQL operation, a job's attempt), so that the
	// work reacting to the event continues its trace (package tracing).
	TraceParent string `json:"trace_parent,omitempty"`
}

// AppendObserver is told of each append once it is done, for metrics:
// how many events it held, how long it took (for an append in the
// caller's transaction, without the commit) and its error, nil on
// success. It must not block.
type AppendObserver func(events int, d time.Duration, err error)

// NewEvent is an event to append. The caller chooses its ID (a UUIDv7 from
// NewEventID, or a deterministic id for work that may be retried): appending
// the same ids with the same content again is a no-op.
type NewEvent struct {
	ID            uuid.UUID
	Type          string
	SchemaVersion int
	Data          json.RawMessage
	Metadata      Metadata
}

// Event is an event as recorded in the log.
type Event struct {
	ID            uuid.UUID
	StreamID      string
	StreamVersion int64
	Type          string
	SchemaVersion int
	Data          json.RawMessage
	Metadata      Metadata
	RecordedAt    time.Time
	// Position is the event's place in the global order.
	Position Position
}

// Position is a place in the global order of the log, and the checkpoint
// of a reader: the transaction that wrote an event, then its global
// position. Ordering by global position alone would lose events, because
// positions can commit out of order; ordering by transaction first, and
// reading only transactions that are certainly finished, does not.
//
// The zero Position is before every event.
type Position struct {
	TransactionID uint64 `json:"transaction_id"`
	Global        int64  `json:"global_position"`
}

// Less reports whether p comes before q in the global order.
func (p Position) Less(q Position) bool {
	if p.TransactionID != q.TransactionID {
		return p.TransactionID < q.TransactionID
	}
	return p.Global < q.Global
}

// String formats p as "transaction/global".
func (p Position) String() string { return fmt.Sprintf("%d/%d", p.TransactionID, p.Global) }

// Describe names the event for errors and logs: "event <id> of <stream>
// (version n) at <position>".
func (e Event) Describe() string {
	return fmt.Sprintf("event %s of %s (version %d) at %s", e.ID, e.StreamID, e.StreamVersion, e.Position)
}

// ExpectedVersion is the optimistic concurrency check of an append: the
// version the stream must have before the append (its number of events).
// Exact versions are non-negative; 0 means the same as NoStream.
type ExpectedVersion int64

const (
	// Any appends whatever the stream's version.
	Any ExpectedVersion = -1
	// NoStream appends only if the stream has no events yet.
	NoStream ExpectedVersion = 0
)

// Exact expects the stream to have exactly version events.
func Exact(version int64) ExpectedVersion { return ExpectedVersion(version) }

// String describes the expectation for error messages.
func (v ExpectedVersion) String() string {
	switch {
	case v == Any:
		return "any"
	case v == NoStream:
		return "no stream"
	default:
		return fmt.Sprintf("version %d", int64(v))
	}
}

// AppendResult reports where an append's events went.
type AppendResult struct {
	// StreamVersion is the stream's version after the append: the version
	// of the last event appended.
	StreamVersion int64
	// Positions holds each appended event's position, in order.
	Positions []Position
	// Duplicate is true when every event was already recorded with the same
	// content by an earlier append, so nothing was written.
	Duplicate bool
}

// Store is an event log backend. Every method honours its context: a
// closed or broken connection gives an error, never a hang. Every backend
// passes the conformance suite in eventstore/storetest.
type Store interface {
	// Append adds events to the end of a stream if its version matches
	// expected, returning ErrWrongVersion otherwise. All events are written
	// or none. Appending events whose ids are already recorded with the
	// same stream, types, data and metadata succeeds and writes nothing
	// (AppendResult.Duplicate); an id already recorded with other content
	// is ErrDuplicateEventID.
	Append(ctx context.Context, stream string, expected ExpectedVersion, events ...NewEvent) (AppendResult, error)

	// ReadStream returns up to limit events of one stream with versions
	// greater than after, in version order.
	ReadStream(ctx context.Context, stream string, after int64, limit int) ([]Event, error)

	// ReadAll returns up to limit committed events after the position, in
	// global order. It never returns an event while an event before it may
	// still commit, so a reader that checkpoints the last position it was
	// given never skips an event.
	ReadAll(ctx context.Context, after Position, limit int) ([]Event, error)

	// Head returns the position and recording time of the last event that
	// ReadAll can return, or the zero values when the log is empty.
	Head(ctx context.Context) (Position, time.Time, error)

	// Checkpoint returns the stored position of a subscription partition,
	// or the zero Position when none is stored.
	Checkpoint(ctx context.Context, key CheckpointKey) (Position, error)

	// SaveCheckpoint stores a subscription partition's position. When the
	// lease epoch is non-zero the write succeeds only while that epoch is
	// the partition's current lease epoch; otherwise it fails with
	// ErrLeaseLost, so a holder that lost its lease cannot move the
	// checkpoint of the replica that took over.
	SaveCheckpoint(ctx context.Context, key CheckpointKey, epoch int64, pos Position) error

	// AcquireLease takes the lease of a subscription partition for holder
	// for ttl, when no other holder has an unexpired lease; otherwise it
	// returns ErrLeaseHeld. Each acquisition increments the lease's epoch.
	AcquireLease(ctx context.Context, key CheckpointKey, holder string, ttl time.Duration) (Lease, error)

	// RenewLease extends a held lease by ttl from now. It returns
	// ErrLeaseLost when the lease has expired or another holder took it.
	RenewLease(ctx context.Context, lease Lease, ttl time.Duration) (Lease, error)

	// ReleaseLease gives a lease up so another holder can take it at once.
	// Releasing a lease that is no longer held is not an error.
	ReleaseLease(ctx context.Context, lease Lease) error

	// Changed returns a channel that is closed at the next hint that the
	// log may have grown (an append in this process or, for backends that
	// support it, in another). Hints may be lost or spurious: readers poll
	// as well.
	Changed() <-chan struct{}
}

// CheckpointKey names one partition of a subscription.
type CheckpointKey struct {
	Subscription string
	Partition    int
}

// String formats the key as "subscription/partition".
func (k CheckpointKey) String() string { return fmt.Sprintf("%s/%d", k.Subscription, k.Partition) }

// Lease is a time-limited right to run one subscription partition.
type Lease struct {
	Key    CheckpointKey
	Holder string
	// Epoch increases with every acquisition; it fences checkpoint writes.
	Epoch     int64
	ExpiresAt time.Time
}

// Errors that stores return; test for them with errors.Is.
var (
	// ErrWrongVersion is an append whose expected version did not match.
	ErrWrongVersion = errors.New("eventstore: wrong expected version")
	// ErrDuplicateEventID is an event id already recorded with other content.
	ErrDuplicateEventID = errors.New("eventstore: event id already recorded with different content")
	// ErrInvalidEvent is an append refused for bad input; nothing was written.
	ErrInvalidEvent = errors.New("eventstore: invalid event")
	// ErrLeaseHeld is an acquisition refused because another holder has the lease.
	ErrLeaseHeld = errors.New("eventstore: lease held by another holder")
	// ErrLeaseLost is a renewal or fenced write by a holder that no longer holds the lease.
	ErrLeaseLost = errors.New("eventstore: lease lost")
)

// VersionError is the ErrWrongVersion of one append, with the versions.
type VersionError struct {
	Stream   string
	Expected ExpectedVersion
	Actual   int64
}

func (e *VersionError) Error() string {
	return fmt.Sprintf("append to %s: expected %s, stream is at version %d", e.Stream, e.Expected, e.Actual)
}

// Unwrap makes errors.Is(err, ErrWrongVersion) true.
func (e *VersionError) Unwrap() error { return ErrWrongVersion }

// NewEventID returns a new time-ordered event id (UUIDv7).
func NewEventID() uuid.UUID {
	return uuid.Must(uuid.NewV7())
}

// Validate checks an append's input: a stream id, at least one event, and
// for each event an id, a type, a JSON object as data and a size within
// MaxEventSize. Backends call it before writing anything.
func Validate(stream string, expected ExpectedVersion, events []NewEvent) error {
	if stream == "" {
		return fmt.Errorf("%w: empty stream id", ErrInvalidEvent)
	}
	if len(stream) > 200 {
		return fmt.Errorf("%w: stream id longer than 200 bytes", ErrInvalidEvent)
	}
	if expected < Any {
		return fmt.Errorf("%w: expected version %d", ErrInvalidEvent, int64(expected))
	}
	if len(events) == 0 {
		return fmt.Errorf("%w: no events to append to %s", ErrInvalidEvent, stream)
	}
	seen := make(map[uuid.UUID]bool, len(events))
	for i, e := range events {
		if err := validateEvent(e); err != nil {
			return fmt.Errorf("%w: event %d of %s: %s", ErrInvalidEvent, i, stream, err)
		}
		if seen[e.ID] {
			return fmt.Errorf("%w: event %d of %s: id %s given twice", ErrInvalidEvent, i, stream, e.ID)
		}
		seen[e.ID] = true
	}
	return nil
}

func validateEvent(e NewEvent) error {
	switch {
	case e.ID == uuid.Nil:
		return errors.New("missing id")
	case e.Type == "":
		return errors.New("missing type")
	case len(e.Type) > 200:
		return errors.New("type longer than 200 bytes")
	case e.SchemaVersion < 0:
		return errors.New("negative schema version")
	case !isJSONObject(e.Data):
		return errors.New("data is not a JSON object")
	case len(e.Data) > MaxEventSize:
		return fmt.Errorf("data is %d bytes, over the %d byte limit", len(e.Data), MaxEventSize)
	case escapesNUL(e.Data) || e.Metadata.holdsNUL():
		return errors.New("a string holds NUL (\\u0000), which PostgreSQL's jsonb cannot store")
	}
	return nil
}

// escapesNUL reports whether a JSON text holds the escape \u0000 (not an
// escaped backslash followed by "u0000").
func escapesNUL(data []byte) bool {
	for i := 0; ; {
		j := bytes.Index(data[i:], []byte(`\u0000`))
		if j < 0 {
			return false
		}
		at := i + j
		backslashes := 0
		for k := at - 1; k >= 0 && data[k] == '\\'; k-- {
			backslashes++
		}
		if backslashes%2 == 0 {
			return true
		}
		i = at + 1
	}
}

// holdsNUL reports whether a field of the metadata holds a NUL character.
func (m Metadata) holdsNUL() bool {
	for _, f := range []string{m.CorrelationID, m.CausationID, m.Actor, m.IdempotencyKey, m.TraceParent} {
		if strings.IndexByte(f, 0) >= 0 {
			return true
		}
	}
	return false
}

func isJSONObject(data []byte) bool {
	for _, c := range data {
		switch c {
		case ' ', '\t', '\n', '\r':
			continue
		case '{':
			return json.Valid(data)
		}
		return false
	}
	return false
}
