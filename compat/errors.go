package compat

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/imageservice/imageservice/commands"
	"github.com/imageservice/imageservice/images"
)

// Error codes of the compatibility API, beside those of packages images
// and commands.
const (
	CodeRouteNotFound          = "ROUTE_NOT_FOUND"
	CodeMethodNotAllowed       = "METHOD_NOT_ALLOWED"
	CodeNoDither               = "NO_DITHER"
	CodeDitherDeleteNotAllowed = "DITHER_DELETE_NOT_SUPPORTED"
	CodeInternal               = "INTERNAL"
	// CodeServiceUnavailable: the image needs a newer build of the
	// service, which a rolling deploy is bringing in
	// (commands.ErrNewerEvents); the code GraphQL answers with, and not
	// UNAVAILABLE, which says that API keys cannot be checked.
	CodeServiceUnavailable = "SERVICE_UNAVAILABLE"
)

// errorBody is the JSON body of every error response.
type errorBody struct {
	Error errorDetail `json:"error"`
}

// errorDetail is the code and readable message of an error response.
type errorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// writeJSON writes v as a JSON response with the given status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeError writes an error response with the code and message.
func writeError(w http.ResponseWriter, status int, code, message string) {
	writeJSON(w, status, errorBody{Error: errorDetail{Code: code, Message: message}})
}

// fail answers err: a domain error with the status of its code, anything
// else with 500 and a message that gives nothing away (the error is logged).
func (a *API) fail(w http.ResponseWriter, r *http.Request, err error) {
	var de *images.Error
	if errors.As(err, &de) {
		writeError(w, statusOf(de.Code), de.Code, de.Message)
		return
	}
	if errors.Is(err, commands.ErrNewerEvents) {
		a.cfg.Logger.Warn("compat: refused: the image holds events of a newer build", "method", r.Method, "path", r.URL.Path, "err", err)
		w.Header().Set("Retry-After", "30")
		writeError(w, http.StatusServiceUnavailable, CodeServiceUnavailable, commands.ErrNewerEvents.Error())
		return
	}
	a.cfg.Logger.Error("compat: request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	writeError(w, http.StatusInternalServerError, CodeInternal, "the request failed; try again later")
}

// statusOf maps a domain error code to an HTTP status. A deleted image is
// 404, as the old services had deleted its row.
func statusOf(code string) int {
	switch code {
	case images.CodeNotFound, images.CodeImageDeleted:
		return http.StatusNotFound
	case commands.CodeFileTooLarge, commands.CodeTooManyPixels:
		return http.StatusRequestEntityTooLarge
	case commands.CodeUnsupportedFormat, images.CodeUnsupportedContentType:
		return http.StatusUnsupportedMediaType
	case images.CodeAlreadyDecided, images.CodeAlreadyExists:
		return http.StatusConflict
	}
	return http.StatusBadRequest
}
