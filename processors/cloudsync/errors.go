package cloudsync

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/imageservice/imageservice/blobstore"
	"github.com/imageservice/imageservice/images"
)

// APIError is an error answer from Cloudinary: an HTTP error status, or an
// "error" object in the response body (the cloudinary-go client reports
// those in the result, not as a Go error).
type APIError struct {
	// Op is the call: "upload" or "destroy".
	Op string
	// PublicID is the asset the call was about.
	PublicID string
	// StatusCode is the HTTP status of the answer.
	StatusCode int
	// Message is Cloudinary's error message.
	Message string
	// RetryAfter is the server's Retry-After hint, zero when it gave none.
	RetryAfter time.Duration
}

// Error implements error.
func (e *APIError) Error() string {
	return fmt.Sprintf("cloudinary %s %s: HTTP %d: %s", e.Op, e.PublicID, e.StatusCode, e.Message)
}

// Temporary reports whether trying again later may succeed: rate limits
// (420, 429), timeouts (408), server errors (5xx) and garbled answers. Every
// other 4xx is permanent.
func (e *APIError) Temporary() bool {
	switch e.StatusCode {
	case 420, http.StatusTooManyRequests, http.StatusRequestTimeout:
		return true
	}
	return e.StatusCode < 400 || e.StatusCode >= 500
}

// Retryable reports whether a Syncer error is transient, so the job should
// run again later (see NextRetry): Cloudinary rate limits and server
// errors, network failures and timeouts, and failures of the event or blob
// store. It is false for nil and for permanent failures: Cloudinary 4xx
// answers other than 408/420/429 (bad signature, bad file, ...), a missing
// image, dither or blob, and commands the domain refuses. A permanent
// failure has recorded nothing and will fail the same way again.
func Retryable(err error) bool {
	if err == nil {
		return false
	}
	var api *APIError
	if errors.As(err, &api) {
		return api.Temporary()
	}
	if images.CodeOf(err) != "" {
		return false
	}
	if errors.Is(err, blobstore.ErrNotFound) || errors.Is(err, blobstore.ErrInvalidKey) || errors.Is(err, blobstore.ErrTooLarge) {
		return false
	}
	return true
}

// FailureReason is the reason a sync's failure records (see
// Syncer.RecordFailure): what Cloudinary answered (only its status when
// it refused the credentials), or which stored file is at fault, or that
// Cloudinary could not be reached, never a URL, key or secret. A
// transient error (one given up on at its last attempt) is prefixed with
// the number of attempts.
func FailureReason(err error, attempts int) string {
	var (
		api    *APIError
		netErr net.Error
	)
	reason := "the copy could not be made"
	switch {
	case errors.As(err, &api) && (api.StatusCode == http.StatusUnauthorized || api.StatusCode == http.StatusForbidden):
		// Cloudinary's answer names the account's API key ("Unknown API
		// key 1234…") or the string it signed: the operator's business,
		// kept in the log, not in a reason every reader of the image sees.
		reason = fmt.Sprintf("Cloudinary refused the service's credentials (HTTP %d)", api.StatusCode)
	case errors.As(err, &api):
		reason = fmt.Sprintf("Cloudinary answered HTTP %d: %s", api.StatusCode, api.Message)
	case errors.Is(err, blobstore.ErrNotFound), errors.Is(err, blobstore.ErrInvalidKey):
		reason = "the stored file is missing"
	case errors.Is(err, blobstore.ErrTooLarge):
		reason = "the stored file is too large to upload"
	case errors.As(err, &netErr) && netErr.Timeout():
		reason = "Cloudinary did not answer in time"
	case errors.As(err, &netErr):
		reason = "Cloudinary could not be reached"
	}
	if Retryable(err) {
		return fmt.Sprintf("gave up after %d attempts: %s", attempts, reason)
	}
	return reason
}

// Back-off recommended for retrying a transient failure: NextRetry(attempt)
// is FirstRetryDelay doubled after each failed attempt, capped at
// MaxRetryDelay: 10s, 20s, 40s, 80s, 160s, 320s, then 10 min. MaxAttempts
// runs give 14 retries spread over about 90 minutes (630 s + 8 x 10 min), so
// a Cloudinary outage or rate limit of up to an hour is ridden out. Runners
// should add jitter (River's default adds ±10%) and wait at least an
// APIError's RetryAfter.
const (
	FirstRetryDelay = 10 * time.Second
	MaxRetryDelay   = 10 * time.Minute
	MaxAttempts     = 15
)

// NextRetry returns how long to wait after the given failed attempt (the
// first run is attempt 1) before running again.
func NextRetry(attempt int) time.Duration {
	if attempt < 1 {
		attempt = 1
	}
	d := FirstRetryDelay
	for i := 1; i < attempt && d < MaxRetryDelay; i++ {
		d *= 2
	}
	return min(d, MaxRetryDelay)
}
