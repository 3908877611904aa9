package images_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/imageservice/imageservice/images"
)

var notifyBoth = images.Notify{Email: "Jane@Example.com", WebhookURL: "https://hooks.example.com/x?token=secret"}

func requestedWith(id uuid.UUID, n images.Notify) func(images.Image) ([]images.Event, error) {
	return func(s images.Image) ([]images.Event, error) {
		return images.RequestDither(s, images.DitherRequest{DitherID: id, Notify: n, Now: t0})
	}
}

func notified(id uuid.UUID, channel, reason string) func(images.Image) ([]images.Event, error) {
	return func(s images.Image) ([]images.Event, error) {
		return images.RecordNotification(s, images.NotificationOutcome{DitherID: id, Channel: channel, Attempt: 2, Reason: reason, At: t0})
	}
}

func TestNotifyValidation(t *testing.T) {
	long := "https://example.com/" + strings.Repeat("a", images.MaxWebhookURLLen)
	for _, c := range []struct {
		name string
		n    images.Notify
		code string
	}{
		{"both", notifyBoth, ""},
		{"none", images.Notify{}, ""},
		{"not an address", images.Notify{Email: "jane"}, images.CodeInvalidEmail},
		{"display name", images.Notify{Email: "Jane <jane@example.com>"}, images.CodeInvalidEmail},
		{"header injection", images.Notify{Email: "jane@example.com\r\nBcc: x@example.com"}, images.CodeInvalidEmail},
		{"quoted local part", images.Notify{Email: `"john doe"@example.com`}, images.CodeInvalidEmail},
		{"quoted brackets", images.Notify{Email: `"x>,<evil@e.com"@b.com`}, images.CodeInvalidEmail},
		{"too long", images.Notify{Email: strings.Repeat("a", 250) + "@example.com"}, images.CodeInvalidEmail},
		{"ftp", images.Notify{WebhookURL: "ftp://example.com/x"}, images.CodeInvalidWebhookURL},
		{"relative", images.Notify{WebhookURL: "/hook"}, images.CodeInvalidWebhookURL},
		{"credentials", images.Notify{WebhookURL: "https://u:p@example.com/"}, images.CodeInvalidWebhookURL},
		{"long url", images.Notify{WebhookURL: long}, images.CodeInvalidWebhookURL},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := images.RequestDither(build(t, uploaded), images.DitherRequest{DitherID: ditherID, Notify: c.n, Now: t0})
			wantCode(t, err, c.code)
		})
	}
}

func TestUploadNotifyNeedsDither(t *testing.T) {
	cmd := uploadCmd()
	cmd.Notify = images.Notify{Email: "jane@example.com"}
	_, err := images.Upload(cmd)
	wantCode(t, err, images.CodeInvalidInput)
	cmd.Dither, cmd.DitherID = &images.DitherInput{}, ditherID
	evs, err := images.Upload(cmd)
	wantCode(t, err, "")
	if req := evs[1].(images.DitherRequested); req.Notify.Email != "jane@example.com" {
		t.Fatalf("notify %+v", req.Notify)
	}
}

func TestNotificationOncePerChannel(t *testing.T) {
	s := build(t, uploaded, requestedWith(ditherID, notifyBoth))
	_, err := images.RecordNotification(s, images.NotificationOutcome{DitherID: ditherID, Channel: images.ChannelEmail})
	wantCode(t, err, images.CodeDitherNotCompleted)
	s = build(t, uploaded, requestedWith(ditherID, notifyBoth), completed(ditherID),
		notified(ditherID, images.ChannelEmail, ""), notified(ditherID, images.ChannelWebhook, "HTTP 410"))
	d, _ := s.Dither(ditherID)
	if len(d.Notifications) != 2 {
		t.Fatalf("notifications %+v", d.Notifications)
	}
	email, _ := d.Notification(images.ChannelEmail)
	hook, _ := d.Notification(images.ChannelWebhook)
	if email.Status != images.NotifySent || email.Target != "J***@Example.com" || email.Attempt != 2 {
		t.Fatalf("email %+v", email)
	}
	if hook.Status != images.NotifyFailed || hook.Target != "hooks.example.com" || hook.Error != "HTTP 410" {
		t.Fatalf("webhook %+v", hook)
	}
	for _, ch := range []string{images.ChannelEmail, images.ChannelWebhook} {
		for _, reason := range []string{"", "again"} {
			evs, err := notified(ditherID, ch, reason)(s)
			if err != nil || len(evs) != 0 {
				t.Fatalf("repeat %s %q: %v %v", ch, reason, evs, err)
			}
		}
	}
}

func TestNotificationNotAskedFor(t *testing.T) {
	s := build(t, uploaded, requestedWith(ditherID, images.Notify{Email: "jane@example.com"}), failed(ditherID))
	_, err := notified(ditherID, images.ChannelWebhook, "")(s)
	wantCode(t, err, images.CodeInvalidInput)
	_, err = notified(ditherID, "sms", "")(s)
	wantCode(t, err, images.CodeInvalidInput)
}

func TestRequestDitherRepeatComparesNotify(t *testing.T) {
	s := build(t, uploaded, requestedWith(ditherID, notifyBoth))
	if evs, err := requestedWith(ditherID, notifyBoth)(s); err != nil || len(evs) != 0 {
		t.Fatalf("repeat: %v %v", evs, err)
	}
	_, err := requestedWith(ditherID, images.Notify{})(s)
	wantCode(t, err, images.CodeAlreadyExists)
}

// TestDitherRequestedNotifyCompatible: notify is an optional field of
// DitherRequested v2, so events written before it read as "no
// notification" and events without it are written as before.
func TestDitherRequestedNotifyCompatible(t *testing.T) {
	old := `{"dither_id":"` + ditherID.String() + `","levels":2,"algorithm":"floyd-steinberg","serpentine":false,"strength":1,"color_space":"linear","grayscale":false,"requested_at":"2025-01-02T03:04:05Z"}`
	ev, err := images.Unmarshal(images.TypeDitherRequested, 2, []byte(old))
	if err != nil || !ev.(images.DitherRequested).Notify.IsZero() {
		t.Fatalf("old event: %+v %v", ev, err)
	}
	_, _, data, _ := images.Marshal(images.DitherRequested{DitherID: ditherID})
	if strings.Contains(string(data), "notify") {
		t.Fatalf("empty notify written: %s", data)
	}
	_, _, data, _ = images.Marshal(images.DitherRequested{DitherID: ditherID, Notify: notifyBoth})
	ev, err = images.Unmarshal(images.TypeDitherRequested, 2, data)
	if err != nil || ev.(images.DitherRequested).Notify != notifyBoth {
		t.Fatalf("round trip %s: %+v %v", data, ev, err)
	}
	for _, e := range []images.Event{
		images.NotificationSent{DitherID: ditherID, Channel: "email", Target: "j***@x.org", Attempt: 1, SentAt: t0},
		images.NotificationFailed{DitherID: ditherID, Channel: "webhook", Target: "x.org", Attempt: 3, Reason: "r", FailedAt: t0},
	} {
		typ, v, data, err := images.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		_ = json.Unmarshal(data, &m)
		if m["dither_id"] != ditherID.String() || m["channel"] == nil || m["target"] == nil {
			t.Fatalf("%s JSON %s", typ, data)
		}
		back, err := images.Unmarshal(typ, v, data)
		if err != nil || back != e {
			t.Fatalf("%s round trip: %+v %v", typ, back, err)
		}
	}
}

func TestShownData(t *testing.T) {
	data := json.RawMessage(`{"dither_id":"d","levels":2,"notify":{"email":"jane@example.com","webhook_url":"https://h.example.com/T0?token=abc"}}`)
	got := string(images.ShownData(images.TypeDitherRequested, data))
	if strings.Contains(got, "jane@") || strings.Contains(got, "token") || !strings.Contains(got, `"j***@example.com"`) ||
		!strings.Contains(got, `"h.example.com"`) || !strings.Contains(got, `"levels":2`) {
		t.Errorf("shown %s", got)
	}
	for _, typ := range []string{images.TypeImageUploaded, images.TypeDitherRequested} {
		plain := json.RawMessage(`{"levels":2}`)
		if got := images.ShownData(typ, plain); string(got) != string(plain) {
			t.Errorf("%s without notify: %s", typ, got)
		}
	}
}
