// Package notify delivers notifications of dither outcomes: e-mail over
// SMTP and signed webhooks. It knows nothing of jobs or events; package
// processors runs it from River jobs and records the outcomes.
package notify

import (
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Config configures the channels. A nil SMTP or an empty WebhookSecret
// leaves that channel unconfigured: its notifications fail with a reason.
type Config struct {
	// SMTP is the mail server, from SMTP_URL.
	SMTP *SMTPConfig
	// WebhookSecret signs webhook bodies (HMAC-SHA256); never logged.
	WebhookSecret string
	// AllowPrivate lets webhooks reach loopback, private and link-local
	// addresses (for tests and closed networks).
	AllowPrivate bool
	// RetryBase is the first retry's delay, doubled on each attempt up to
	// an hour (default 30 s).
	RetryBase time.Duration
}

// LogValue implements slog.LogValuer without the secrets.
func (c Config) LogValue() slog.Value {
	smtp := "off"
	if c.SMTP != nil {
		smtp = c.SMTP.String()
	}
	return slog.GroupValue(slog.String("smtp", smtp), slog.Bool("webhook_secret_set", c.WebhookSecret != ""),
		slog.Bool("allow_private", c.AllowPrivate))
}

// NextRetry returns the delay before the attempt after the given one:
// base, doubled per attempt, at most an hour.
func (c Config) NextRetry(attempt int) time.Duration {
	base := c.RetryBase
	if base <= 0 {
		base = 30 * time.Second
	}
	d := base
	for i := 1; i < attempt && d < time.Hour; i++ {
		d *= 2
	}
	return min(d, time.Hour)
}

// PermanentError is a delivery error that retrying will not fix. Its
// message is safe to record and show (no secrets, no URL paths).
type PermanentError struct{ Reason string }

// Error implements error.
func (e *PermanentError) Error() string { return e.Reason }

func permanent(format string, args ...any) error {
	return &PermanentError{Reason: fmt.Sprintf(format, args...)}
}

// Retryable reports whether a delivery error may succeed on a later
// attempt: network errors, 4xx SMTP replies, HTTP 5xx and 429.
func Retryable(err error) bool {
	var p *PermanentError
	return err != nil && !errors.As(err, &p)
}
