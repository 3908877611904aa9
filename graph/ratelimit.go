package graph

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// rateNote is where guard leaves, for withRateStatus, the wait it told a
// client whose mutation it refused for its rate.
type rateNote struct {
	retryAfterSeconds int
	refused           bool
}

type rateNoteKey struct{}

// rateLimited answers a mutation refused for its rate, and notes it so
// that an HTTP response carries status 429 and Retry-After.
func rateLimited(ctx context.Context, wait time.Duration) graphql.ResponseHandler {
	seconds := RetryAfterSeconds(wait)
	if note, ok := ctx.Value(rateNoteKey{}).(*rateNote); ok {
		note.refused, note.retryAfterSeconds = true, seconds
	}
	return graphql.OneShot(&graphql.Response{Errors: gqlerror.List{{
		Message:    fmt.Sprintf("too many writes; retry in %d s", seconds),
		Extensions: map[string]any{"code": "RATE_LIMITED", "retryAfterSeconds": seconds},
	}}})
}

// withRateStatus gives plain HTTP requests (not websockets, not SSE) a
// note for guard, and answers 429 with Retry-After when guard refused the
// request's mutation for its rate.
func withRateStatus(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "" || r.Header.Get("Accept") == "text/event-stream" {
			next.ServeHTTP(w, r)
			return
		}
		note := &rateNote{}
		ctx := context.WithValue(r.Context(), rateNoteKey{}, note)
		next.ServeHTTP(&rateStatusWriter{ResponseWriter: w, note: note}, r.WithContext(ctx))
	})
}

// rateStatusWriter turns the response's status into 429 when its note
// says the mutation was refused for its rate.
type rateStatusWriter struct {
	http.ResponseWriter
	note        *rateNote
	wroteHeader bool
}

func (w *rateStatusWriter) WriteHeader(status int) {
	if w.wroteHeader {
		return
	}
	w.wroteHeader = true
	if w.note.refused {
		w.Header().Set("Retry-After", fmt.Sprint(w.note.retryAfterSeconds))
		status = http.StatusTooManyRequests
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *rateStatusWriter) Write(b []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *rateStatusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// RetryAfterSeconds is a wait as a Retry-After value: whole seconds,
// rounded up, at least 1.
func RetryAfterSeconds(wait time.Duration) int {
	return max(1, int(math.Ceil(wait.Seconds())))
}
