package notify_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/imageservice/imageservice/processors/notify"
)

func TestForbiddenKind(t *testing.T) {
	for addr, want := range map[string]string{
		"127.0.0.1": "loopback", "::1": "loopback", "10.1.2.3": "private", "192.168.0.1": "private",
		"172.16.5.5": "private", "fd00::1": "private", "169.254.169.254": "link-local", "fe80::1": "link-local",
		"224.0.0.1": "multicast", "0.0.0.0": "unspecified", "::": "unspecified", "::ffff:127.0.0.1": "loopback",
		"100.64.0.1": "shared (carrier-grade NAT)", "93.184.216.34": "", "2606:4700::1111": "",
	} {
		if got := notify.ForbiddenKind(netip.MustParseAddr(addr)); got != want {
			t.Errorf("%s: %q, want %q", addr, got, want)
		}
	}
}

func TestSignIncludesTimestamp(t *testing.T) {
	body := []byte(`{"a":1}`)
	s := notify.Sign([]byte("k"), 100, body)
	if !strings.HasPrefix(s, "sha256=") || len(s) != len("sha256=")+64 {
		t.Fatalf("signature %q", s)
	}
	if s == notify.Sign([]byte("k"), 101, body) || s == notify.Sign([]byte("j"), 100, body) {
		t.Fatal("the signature ignores the timestamp or the key")
	}
}

func TestWebhookRefusesLoopbackAtTheDialer(t *testing.T) {
	hit := false
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hit = true }))
	defer srv.Close()
	// A name that resolves to loopback is refused as well as a literal.
	for _, target := range []string{srv.URL, strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)} {
		err := notify.NewWebhooks("k", false, nil).Post(context.Background(), target+"/x?token=t", "d", []byte("{}"))
		if err == nil || notify.Retryable(err) || !strings.Contains(err.Error(), "loopback") || strings.Contains(err.Error(), "token") {
			t.Fatalf("%s: %v", target, err)
		}
	}
	if hit {
		t.Fatal("the request was sent")
	}
}

func TestWebhookStatuses(t *testing.T) {
	status := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if status == http.StatusFound {
			w.Header().Set("Location", "http://169.254.169.254/")
		}
		w.WriteHeader(status)
	}))
	defer srv.Close()
	w := notify.NewWebhooks("k", true, nil)
	for code, retry := range map[int]bool{200: false, 204: false, 500: true, 503: true, 429: true, 400: false, 404: false, 410: false, 302: false} {
		status = code
		err := w.Post(context.Background(), srv.URL, "d", []byte("{}"))
		switch {
		case code < 300 && err != nil:
			t.Errorf("%d: %v", code, err)
		case code >= 300 && (err == nil || notify.Retryable(err) != retry):
			t.Errorf("%d: %v (retryable %v)", code, err, notify.Retryable(err))
		}
	}
	srv.Close()
	if err := w.Post(context.Background(), srv.URL, "d", nil); err == nil || !notify.Retryable(err) {
		t.Errorf("network error: %v", err)
	}
}

func TestParseSMTPURL(t *testing.T) {
	c, err := notify.ParseSMTPURL("smtp://user:p%40ss@mail.example.com?from=images@example.com")
	if err != nil || c.Host != "mail.example.com" || c.Port != "587" || c.Password != "p@ss" || c.From != "images@example.com" {
		t.Fatalf("%+v %v", c, err)
	}
	if strings.Contains(c.String(), "p@ss") {
		t.Fatalf("String shows the password: %s", c)
	}
	for _, bad := range []string{"http://x?from=a@b.c", "smtp://mail.example.com", "smtp://:25?from=a@b.c", "smtp://x?from=nope"} {
		if _, err := notify.ParseSMTPURL(bad); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
	if c, _ := notify.ParseSMTPURL("smtps://x?from=a@b.c"); c == nil || c.Port != "465" || !c.ImplicitTLS {
		t.Errorf("smtps: %+v", c)
	}
}

func TestNextRetry(t *testing.T) {
	c := notify.Config{}
	if c.NextRetry(1) != 30*time.Second || c.NextRetry(2) != time.Minute || c.NextRetry(20) != time.Hour {
		t.Fatal(c.NextRetry(1), c.NextRetry(2), c.NextRetry(20))
	}
}

func TestPermanentError(t *testing.T) {
	var p *notify.PermanentError
	if !errors.As(error(&notify.PermanentError{Reason: "x"}), &p) || notify.Retryable(p) {
		t.Fatal("a permanent error is retryable")
	}
}
