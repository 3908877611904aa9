package images

import (
	"errors"
	"fmt"
)

// Error codes carried by *Error. They are stable: clients see them as
// userErrors { code }.
const (
	CodeNotFound               = "NOT_FOUND"
	CodeInvalidInput           = "INVALID_INPUT"
	CodeInvalidLevels          = "INVALID_LEVELS"
	CodeUnknownAlgorithm       = "UNKNOWN_ALGORITHM"
	CodeInvalidStrength        = "INVALID_STRENGTH"
	CodeInvalidColorSpace      = "INVALID_COLOR_SPACE"
	CodeInvalidPalette         = "INVALID_PALETTE"
	CodeUnsupportedContentType = "UNSUPPORTED_CONTENT_TYPE"
	CodeImageDeleted           = "IMAGE_DELETED"
	CodeAlreadyDecided         = "ALREADY_DECIDED"
	CodeAlreadyExists          = "ALREADY_EXISTS"
	CodeDitherNotCompleted     = "DITHER_NOT_COMPLETED"
)

// Error is a domain error: a rule refused a command. Field names the input
// field at fault (camelCase, as in the GraphQL input) or is empty; Code is one
// of the Code constants; Message is readable by an end user.
type Error struct {
	Field   string
	Code    string
	Message string
}

// Error implements the error interface.
func (e *Error) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("%s: %s", e.Code, e.Message)
	}
	return fmt.Sprintf("%s: %s: %s", e.Code, e.Field, e.Message)
}

// Is reports whether target is an *Error with the same Code, so that
// errors.Is(err, images.ErrNotFound) works whatever the field and message.
func (e *Error) Is(target error) bool {
	var t *Error
	if !errors.As(target, &t) {
		return false
	}
	return t.Code == e.Code
}

// Sentinels for errors.Is; each matches any *Error with its code.
var (
	ErrNotFound       = &Error{Code: CodeNotFound, Message: "image not found"}
	ErrImageDeleted   = &Error{Code: CodeImageDeleted, Message: "image is deleted"}
	ErrAlreadyDecided = &Error{Code: CodeAlreadyDecided, Message: "dither already has an outcome"}
	ErrInvalidInput   = &Error{Code: CodeInvalidInput, Message: "invalid input"}
)

// CodeOf returns the code of the domain error in err's chain, or "" if err is
// not a domain error.
func CodeOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

func newError(field, code, format string, args ...any) *Error {
	return &Error{Field: field, Code: code, Message: fmt.Sprintf(format, args...)}
}

// WithField returns err with its field renamed to field when it is an
// *Error whose field is from, or else err as it is: for a caller that
// knows the input a field came from under another name.
func WithField(err error, from, field string) error {
	var e *Error
	if !errors.As(err, &e) || e.Field != from {
		return err
	}
	renamed := *e
	renamed.Field = field
	return &renamed
}

// underField prefixes the field of a domain error with parent and a dot
// (the options of an upload's first dither are "dither.levels", ...).
func underField(err error, parent string) error {
	var e *Error
	if !errors.As(err, &e) || e.Field == "" {
		return err
	}
	prefixed := *e
	prefixed.Field = parent + "." + e.Field
	return &prefixed
}
