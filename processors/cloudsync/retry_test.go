package cloudsync_test

import (
	"errors"
	"fmt"
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
