package images

import (
	"fmt"
	"path"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
)

// StreamPrefix starts the name of every image stream.
const StreamPrefix = "image-"

// MaxFilenameLen caps a cleaned filename, in bytes.
const MaxFilenameLen = 200

// fallbackFilename is used when nothing usable is left of a filename.
const fallbackFilename = "image"

// outcomeNamespace is the UUIDv5 namespace of OutcomeEventID.
var outcomeNamespace = uuid.MustParse("6f1c1a43-9f3e-4b1e-8a51-3d0f2b7c9e10")

// StreamID returns the stream name of an image: "image-<uuid>".
func StreamID(imageID uuid.UUID) string { return StreamPrefix + imageID.String() }

// ParseStreamID returns the image id of an image stream name.
func ParseStreamID(stream string) (uuid.UUID, error) {
	rest, ok := strings.CutPrefix(stream, StreamPrefix)
	if !ok {
		return uuid.Nil, fmt.Errorf("parse stream id %q: not an image stream", stream)
	}
	if len(rest) != 36 {
		return uuid.Nil, fmt.Errorf("parse stream id %q: want a canonical uuid", stream)
	}
	id, err := uuid.Parse(rest)
	if err != nil {
		return uuid.Nil, fmt.Errorf("parse stream id %q: %w", stream, err)
	}
	return id, nil
}

// OutcomeEventID derives the event id of a dither's outcome event of the
// given kind (for example "completed", "failed", "synced") from the dither
// id, so that a processor retrying the same append sends the same event id
// and the store can recognise the retry. It is a name-based UUIDv5.
func OutcomeEventID(ditherID uuid.UUID, kind string) uuid.UUID {
	return uuid.NewSHA1(outcomeNamespace, []byte(ditherID.String()+"/"+kind))
}

// CleanFilename turns a client-supplied filename into a safe label: the base
// name only (no directories, either slash), no control or invisible format
// characters, valid UTF-8, whitespace collapsed and trimmed, at most
// MaxFilenameLen bytes (keeping a short extension), and never empty or a dot
// name: it falls back to "image".
func CleanFilename(s string) string {
	s = strings.ToValidUTF8(s, "")
	s = strings.ReplaceAll(s, `\`, "/")
	s = path.Base(s)
	s = strings.Map(func(r rune) rune {
		switch {
		case unicode.IsSpace(r):
			return ' '
		case unicode.IsControl(r), unicode.Is(unicode.Cf, r), r == utf8.RuneError, r == '/':
			return -1
		}
		return r
	}, s)
	s = strings.Join(strings.Fields(s), " ")
	s = capFilename(s)
	if strings.Trim(s, ". ") == "" {
		return fallbackFilename
	}
	return s
}

// capFilename shortens s to MaxFilenameLen bytes, keeping an extension of up
// to 16 bytes.
func capFilename(s string) string {
	if len(s) <= MaxFilenameLen {
		return s
	}
	ext := path.Ext(s)
	if len(ext) > 16 {
		ext = ""
	}
	return strings.TrimSpace(truncate(strings.TrimSuffix(s, ext), MaxFilenameLen-len(ext))) + ext
}

// truncate cuts s to at most n bytes on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// MaxIdempotencyKeyLen caps an idempotency key, in bytes.
const MaxIdempotencyKeyLen = 255

// CheckIdempotencyKey refuses an idempotency key that is too long, not
// UTF-8 or holds control characters (which no event may record).
func CheckIdempotencyKey(key string) error {
	if len(key) > MaxIdempotencyKeyLen || !utf8.ValidString(key) || strings.ContainsFunc(key, unicode.IsControl) {
		return newError("idempotencyKey", CodeInvalidInput,
			"an idempotency key is at most %d bytes of UTF-8 text without control characters", MaxIdempotencyKeyLen)
	}
	return nil
}
