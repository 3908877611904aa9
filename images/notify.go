package images

import (
	"encoding/json"
	"net/mail"
	"net/url"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Error codes of notification requests.
const (
	CodeInvalidEmail      = "INVALID_EMAIL"
	CodeInvalidWebhookURL = "INVALID_WEBHOOK_URL"
)

// Caps on a notification request's fields, in bytes.
const (
	MaxEmailLen      = 254 // RFC 5321's path limit
	MaxWebhookURLLen = 2048
)

// IsZero reports whether no channel is asked for.
func (n Notify) IsZero() bool { return n.Email == "" && n.WebhookURL == "" }

// Channels returns the channels asked for, e-mail first.
func (n Notify) Channels() []string {
	var cs []string
	if n.Email != "" {
		cs = append(cs, ChannelEmail)
	}
	if n.WebhookURL != "" {
		cs = append(cs, ChannelWebhook)
	}
	return cs
}

// Target returns the channel's target as recorded in events and shown to
// users: the e-mail address redacted (first letter and domain) or the
// webhook's host. Paths and queries of webhook URLs may hold tokens, so
// they are never shown.
func (n Notify) Target(channel string) string {
	switch channel {
	case ChannelEmail:
		return RedactEmail(n.Email)
	case ChannelWebhook:
		if u, err := url.Parse(n.WebhookURL); err == nil {
			return u.Host
		}
	}
	return ""
}

// ShownData returns an event's data as it may be shown to readers of the
// image: a DitherRequested's notification targets are redacted as Target
// redacts them (the e-mail address, the webhook's path and query, which
// may hold tokens); other events' data is returned as it is.
func ShownData(eventType string, data json.RawMessage) json.RawMessage {
	if eventType != TypeDitherRequested {
		return data
	}
	var fields map[string]json.RawMessage
	var n Notify
	if json.Unmarshal(data, &fields) != nil || fields["notify"] == nil || json.Unmarshal(fields["notify"], &n) != nil {
		return data
	}
	shown := map[string]string{}
	if n.Email != "" {
		shown["email"] = n.Target(ChannelEmail)
	}
	if n.WebhookURL != "" {
		shown["webhook_url"] = n.Target(ChannelWebhook)
	}
	fields["notify"], _ = json.Marshal(shown)
	out, err := json.Marshal(fields)
	if err != nil {
		return data
	}
	return out
}

// RedactEmail keeps the first character of the local part and the domain:
// "jane@example.com" becomes "j***@example.com".
func RedactEmail(addr string) string {
	local, domain, ok := strings.Cut(addr, "@")
	if !ok || local == "" {
		return "***"
	}
	r := []rune(local)
	return string(r[0]) + "***@" + domain
}

// Resolve validates a notification request and returns it normalised: a
// bare e-mail address and a trimmed webhook URL.
func (n Notify) Resolve() (Notify, error) {
	out := Notify{Email: strings.TrimSpace(n.Email), WebhookURL: strings.TrimSpace(n.WebhookURL)}
	if out.Email != "" {
		addr, err := parseEmail(out.Email)
		if err != nil {
			return Notify{}, err
		}
		out.Email = addr
	}
	if out.WebhookURL != "" {
		if err := validateWebhookURL(out.WebhookURL); err != nil {
			return Notify{}, err
		}
	}
	return out, nil
}

func parseEmail(s string) (string, error) {
	if len(s) > MaxEmailLen {
		return "", newError("notify.email", CodeInvalidEmail, "the e-mail address is longer than %d bytes", MaxEmailLen)
	}
	addr, err := mail.ParseAddress(s)
	if err != nil || addr.Name != "" || strings.ContainsAny(addr.Address, "\r\n") {
		return "", newError("notify.email", CodeInvalidEmail, "%q is not an e-mail address", s)
	}
	local, domain, _ := strings.Cut(addr.Address, "@")
	if !strings.Contains(domain, ".") && domain != "localhost" {
		return "", newError("notify.email", CodeInvalidEmail, "%q has no domain name", s)
	}
	// A quoted local part ("john doe"@example.com) comes back unquoted,
	// which no SMTP command or header may carry as it is.
	if strings.ContainsAny(local, " \t\"(),:;<>@[\\]") {
		return "", newError("notify.email", CodeInvalidEmail, "%q: quoted local parts are not supported", s)
	}
	return addr.Address, nil
}

func validateWebhookURL(s string) error {
	if len(s) > MaxWebhookURLLen {
		return newError("notify.webhookUrl", CodeInvalidWebhookURL, "the webhook URL is longer than %d bytes", MaxWebhookURLLen)
	}
	u, err := url.Parse(s)
	switch {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "":
		return newError("notify.webhookUrl", CodeInvalidWebhookURL, "the webhook URL must be an absolute http(s) URL (https recommended)")
	case u.User != nil:
		return newError("notify.webhookUrl", CodeInvalidWebhookURL, "the webhook URL must not hold a user name or password")
	case strings.ContainsAny(s, " \t\r\n"):
		return newError("notify.webhookUrl", CodeInvalidWebhookURL, "the webhook URL must not hold spaces")
	}
	return nil
}

// NotificationOutcome is the input of RecordNotification: a delivery, or
// when Reason is set, a delivery given up.
type NotificationOutcome struct {
	DitherID uuid.UUID
	Channel  string
	Attempt  int
	// Reason, when set, records NotificationFailed.
	Reason string
	At     time.Time
}

// RecordNotification decides a notification's outcome: NotificationSent,
// or NotificationFailed when a reason is given. The dither must have an
// outcome and have asked for the channel. Each channel of a dither gets
// one outcome: any later one is a no-op, so a retried job cannot record
// two.
func RecordNotification(s Image, cmd NotificationOutcome) ([]Event, error) {
	d, err := pendingDither(s, cmd.DitherID)
	if err != nil {
		return nil, err
	}
	if d.Status == DitherStatusPending {
		return nil, newError("ditherId", CodeDitherNotCompleted, "dither %s has no outcome to notify yet", d.ID)
	}
	if cmd.Channel != ChannelEmail && cmd.Channel != ChannelWebhook {
		return nil, newError("channel", CodeInvalidInput, "unknown notification channel %q", cmd.Channel)
	}
	target := d.Notify.Target(cmd.Channel)
	if target == "" {
		return nil, newError("channel", CodeInvalidInput, "dither %s asked for no %s notification", d.ID, cmd.Channel)
	}
	if _, done := d.Notification(cmd.Channel); done {
		return nil, nil
	}
	at, attempt := nowOr(cmd.At), max(cmd.Attempt, 1)
	if reason := truncate(strings.TrimSpace(cmd.Reason), maxReasonLen); reason != "" {
		return []Event{NotificationFailed{DitherID: d.ID, Channel: cmd.Channel, Target: target,
			Attempt: attempt, Reason: reason, FailedAt: at}}, nil
	}
	return []Event{NotificationSent{DitherID: d.ID, Channel: cmd.Channel, Target: target, Attempt: attempt, SentAt: at}}, nil
}
