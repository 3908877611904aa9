package projections

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Cursor is an opaque position in a paginated query: the base64url
// encoding of the keyset values of the item it points at. Clients must not
// build or change cursors; ParseCursor refuses anything else.
type Cursor string

// Cursor kinds, the first field of the encoded keyset.
const (
	imageKind  = "img"
	ditherKind = "dth"
)

// maxCursorLen bounds the cursors ParseCursor looks at.
const maxCursorLen = 256

// NewImageCursor returns the cursor of an image in Images: its creation
// time (at microsecond precision) and id.
func NewImageCursor(createdAt time.Time, id uuid.UUID) Cursor {
	raw := fmt.Sprintf("%s|%d|%s", imageKind, createdAt.UnixMicro(), id)
	return Cursor(base64.RawURLEncoding.EncodeToString([]byte(raw)))
}

// NewDitherCursor returns the cursor of a dither in Dithers: its Seq.
func NewDitherCursor(seq int) Cursor {
	raw := fmt.Sprintf("%s|%d", ditherKind, seq)
	return Cursor(base64.RawURLEncoding.EncodeToString([]byte(raw)))
}

// ParseCursor checks a cursor received from a client: it must be one that
// NewImageCursor or NewDitherCursor made. The error wraps ErrInvalidCursor.
func ParseCursor(s string) (Cursor, error) {
	c := Cursor(s)
	kind, _, err := c.decode()
	if err != nil {
		return "", err
	}
	switch kind {
	case imageKind:
		_, _, err = c.ImageKey()
	case ditherKind:
		_, err = c.DitherKey()
	}
	if err != nil {
		return "", err
	}
	return c, nil
}

// ImageKey returns the keyset values of an image cursor.
func (c Cursor) ImageKey() (createdAt time.Time, id uuid.UUID, err error) {
	fields, err := c.fields(imageKind, 3)
	if err != nil {
		return time.Time{}, uuid.Nil, err
	}
	micros, err := strconv.ParseInt(fields[1], 10, 64)
	if err != nil {
		return time.Time{}, uuid.Nil, errorf(ErrInvalidCursor, "bad time in image cursor")
	}
	id, err = uuid.Parse(fields[2])
	if err != nil || fields[2] != id.String() {
		return time.Time{}, uuid.Nil, errorf(ErrInvalidCursor, "bad id in image cursor")
	}
	return time.UnixMicro(micros).UTC(), id, nil
}

// DitherKey returns the Seq of a dither cursor.
func (c Cursor) DitherKey() (seq int, err error) {
	fields, err := c.fields(ditherKind, 2)
	if err != nil {
		return 0, err
	}
	seq, err = strconv.Atoi(fields[1])
	if err != nil || seq < 1 {
		return 0, errorf(ErrInvalidCursor, "bad sequence number in dither cursor")
	}
	return seq, nil
}

// fields decodes a cursor of the given kind with n fields.
func (c Cursor) fields(kind string, n int) ([]string, error) {
	got, fields, err := c.decode()
	if err != nil {
		return nil, err
	}
	if got != kind {
		return nil, errorf(ErrInvalidCursor, "cursor of another query")
	}
	if len(fields) != n {
		return nil, errorf(ErrInvalidCursor, "malformed cursor")
	}
	return fields, nil
}

// decode returns a cursor's kind and fields (the kind included).
func (c Cursor) decode() (string, []string, error) {
	if c == "" || len(c) > maxCursorLen {
		return "", nil, errorf(ErrInvalidCursor, "empty or overlong cursor")
	}
	raw, err := base64.RawURLEncoding.DecodeString(string(c))
	if err != nil {
		return "", nil, errorf(ErrInvalidCursor, "not base64url")
	}
	fields := strings.Split(string(raw), "|")
	switch fields[0] {
	case imageKind, ditherKind:
		return fields[0], fields, nil
	}
	return "", nil, errorf(ErrInvalidCursor, "unknown cursor kind")
}

// errorf wraps a sentinel error with a message.
func errorf(sentinel error, format string, args ...any) error {
	return fmt.Errorf("%w: %s", sentinel, fmt.Sprintf(format, args...))
}
