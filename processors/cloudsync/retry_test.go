package cloudsync_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/imageservice/imageservice/blobstore"
	"github.com/imageservice/imageservice/images"
	"github.com/imageservice/imageservice/processors/cloudsync"
)

func TestNextRetryCoversAnHour(t *testing.T) {
	var total time.Duration
	prev := time.Duration(0)
	for attempt := 1; attempt < cloudsync.MaxAttempts; attempt++ {
		d := cloudsync.NextRetry(attempt)
		if d < prev || d > cloudsync.MaxRetryDelay {
			t.Fatalf("NextRetry(%d) = %v after %v (cap %v)", attempt, d, prev, cloudsync.MaxRetryDelay)
		}
		prev, total = d, total+d
	}
	if total <= time.Hour {
		t.Fatalf("%d attempts retry over %v; want more than an hour", cloudsync.MaxAttempts, total)
	}
	if got := cloudsync.NextRetry(1); got != cloudsync.FirstRetryDelay {
		t.Errorf("NextRetry(1) = %v", got)
	}
	if got := cloudsync.NextRetry(1000); got != cloudsync.MaxRetryDelay {
		t.Errorf("NextRetry(1000) = %v", got)
	}
}

func TestRetryable(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{&cloudsync.APIError{StatusCode: 420}, true},
		{&cloudsync.APIError{StatusCode: 429}, true},
		{&cloudsync.APIError{StatusCode: 500}, true},
		{&cloudsync.APIError{StatusCode: 503}, true},
		{&cloudsync.APIError{StatusCode: 400}, false},
		{&cloudsync.APIError{StatusCode: 401}, false},
		{&cloudsync.APIError{StatusCode: 404}, false},
		{fmt.Errorf("wrapped: %w", &cloudsync.APIError{StatusCode: 429}), true},
		{fmt.Errorf("load: %w", images.ErrNotFound), false},
		{fmt.Errorf("open: %w", blobstore.ErrNotFound), false},
		{errors.New("connection refused"), true},
	} {
		if got := cloudsync.Retryable(tc.err); got != tc.want {
			t.Errorf("Retryable(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

// A failure's reason says what went wrong without URLs, keys or secrets,
// and how many attempts a transient one was given.
func TestFailureReason(t *testing.T) {
	secretKey := strings.Repeat("a", 64)
	for _, tc := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("sync image: %w", &cloudsync.APIError{StatusCode: 401, Message: "Unknown API key 123456789012345", PublicID: "imageservice/x"}),
			"Cloudinary refused the service's credentials (HTTP 401)"},
		{&cloudsync.APIError{StatusCode: 403, Message: "Invalid Signature abc. String to sign - 'public_id=x&timestamp=1'"},
			"Cloudinary refused the service's credentials (HTTP 403)"},
		{&cloudsync.APIError{StatusCode: 400, Message: "Invalid image file"}, "Cloudinary answered HTTP 400: Invalid image file"},
		{&cloudsync.APIError{StatusCode: 503, Message: "Service Unavailable"}, "gave up after 15 attempts: Cloudinary answered HTTP 503: Service Unavailable"},
		{fmt.Errorf("open blob %s: %w", secretKey, blobstore.ErrNotFound), "the stored file is missing"},
		{fmt.Errorf("read blob %s: %w", secretKey, blobstore.ErrTooLarge), "the stored file is too large to upload"},
		{&url.Error{Op: "Post", URL: "https://api.example/v1_1/cloud/image/upload?api_key=k", Err: context.DeadlineExceeded},
			"gave up after 15 attempts: Cloudinary did not answer in time"},
		{&url.Error{Op: "Post", URL: "https://api.example/", Err: &net.OpError{Op: "dial", Err: errors.New("connection refused")}},
			"gave up after 15 attempts: Cloudinary could not be reached"},
		{errors.New("record sync of image: conn closed"), "gave up after 15 attempts: the copy could not be made"},
	} {
		if got := cloudsync.FailureReason(tc.err, cloudsync.MaxAttempts); got != tc.want {
			t.Errorf("FailureReason(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}
