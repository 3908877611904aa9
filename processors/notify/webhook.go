package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"syscall"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/imageservice/imageservice/tracing"
)

// Webhook headers. The signature is "sha256=" and the hex HMAC-SHA256,
// keyed with WEBHOOK_SECRET, of the timestamp, a dot and the raw body
// ("<X-Imageservice-Timestamp>.<body>"), as Stripe does: receivers
// recompute it, compare in constant time, and reject old timestamps to
// stop replays. The delivery id is the same on every retry.
const (
	HeaderSignature = "X-Imageservice-Signature"
	HeaderTimestamp = "X-Imageservice-Timestamp"
	HeaderDelivery  = "X-Imageservice-Delivery"
)

// WebhookTimeout bounds one delivery attempt.
const WebhookTimeout = 10 * time.Second

// ErrForbiddenAddress is returned (wrapped) when a webhook's host is, or
// resolves to, an address webhooks may not reach.
var ErrForbiddenAddress = errors.New("address not allowed for webhooks")

// Sign returns the signature header's value of a body sent at ts.
func Sign(secret []byte, ts int64, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(strconv.FormatInt(ts, 10) + "."))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// Webhooks posts signed JSON bodies.
type Webhooks struct {
	secret []byte
	client *http.Client
	now    func() time.Time
}

// NewWebhooks returns a sender signing with secret. Unless allowPrivate,
// its dialer refuses loopback, private, link-local, multicast and
// unspecified addresses: the check runs on the address actually connected
// to, so DNS rebinding cannot get round it. No proxy is used and
// redirects are not followed. Each request gets a client span of tp
// ("POST webhook", see tracing.ClientTransport); tp may be nil.
func NewWebhooks(secret string, allowPrivate bool, tp trace.TracerProvider) *Webhooks {
	dialer := &net.Dialer{Timeout: WebhookTimeout}
	if !allowPrivate {
		dialer.Control = func(_, address string, _ syscall.RawConn) error { return checkDialAddress(address) }
	}
	transport := &http.Transport{
		Proxy: nil, DialContext: dialer.DialContext, TLSHandshakeTimeout: WebhookTimeout,
		MaxIdleConns: 10, IdleConnTimeout: 30 * time.Second, ResponseHeaderTimeout: WebhookTimeout,
	}
	return &Webhooks{secret: []byte(secret), now: time.Now, client: &http.Client{
		Transport: tracing.ClientTransport(tp, transport, "webhook"), Timeout: WebhookTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// Post sends body to target. 2xx is success; 5xx, 429 and network
// errors may be retried; other answers and refused addresses are
// permanent. Errors never hold the URL's path or query.
func (w *Webhooks) Post(ctx context.Context, target, deliveryID string, body []byte) error {
	u, err := url.Parse(target)
	if err != nil {
		return permanent("the webhook URL cannot be parsed")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return permanent("the webhook URL cannot be used: %s", u.Host)
	}
	ts := w.now().Unix()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "imageservice-webhook/1")
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
	req.Header.Set(HeaderSignature, Sign(w.secret, ts, body))
	req.Header.Set(HeaderDelivery, deliveryID)
	resp, err := w.client.Do(req)
	if err != nil {
		return postError(u.Host, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return statusError(u.Host, resp.StatusCode)
}

// postError describes a failed request without the URL (url.Error
// repeats it, path and query included).
func postError(host string, err error) error {
	if errors.Is(err, ErrForbiddenAddress) {
		var fe *forbiddenError
		errors.As(err, &fe)
		return permanent("webhook to %s refused: %s", host, fe.Error())
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return fmt.Errorf("webhook to %s: %w", host, err)
}

func statusError(host string, code int) error {
	switch {
	case code >= 200 && code < 300:
		return nil
	case code >= 500 || code == http.StatusTooManyRequests || code == http.StatusRequestTimeout:
		return fmt.Errorf("webhook to %s answered HTTP %d", host, code)
	case code >= 300 && code < 400:
		return permanent("webhook to %s answered HTTP %d (redirects are not followed)", host, code)
	}
	return permanent("webhook to %s answered HTTP %d", host, code)
}

// forbiddenError names the refused address and why.
type forbiddenError struct {
	addr netip.Addr
	kind string
}

func (e *forbiddenError) Error() string {
	return fmt.Sprintf("%s is a %s address (set WEBHOOK_ALLOW_PRIVATE=true to allow)", e.addr, e.kind)
}

func (e *forbiddenError) Unwrap() error { return ErrForbiddenAddress }

// checkDialAddress refuses a dialled "ip:port" in a forbidden range.
func checkDialAddress(address string) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return fmt.Errorf("dial %q: %w", address, err)
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return fmt.Errorf("dial %q: %w", address, err)
	}
	if kind := ForbiddenKind(ip); kind != "" {
		return &forbiddenError{addr: ip.Unmap(), kind: kind}
	}
	return nil
}

// extraRanges are special-purpose ranges beside those netip classifies.
var extraRanges = []struct {
	prefix netip.Prefix
	kind   string
}{
	{netip.MustParsePrefix("0.0.0.0/8"), "this-network"},
	{netip.MustParsePrefix("100.64.0.0/10"), "shared (carrier-grade NAT)"},
	{netip.MustParsePrefix("192.0.0.0/24"), "IETF protocol"},
	{netip.MustParsePrefix("198.18.0.0/15"), "benchmarking"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved"},
	{netip.MustParsePrefix("64:ff9b::/96"), "NAT64"},
}

// ForbiddenKind returns what kind of address webhooks may not reach ip
// is ("loopback", "private", ...), or "" when it may be reached.
func ForbiddenKind(ip netip.Addr) string {
	ip = ip.Unmap()
	switch {
	case ip.IsLoopback():
		return "loopback"
	case ip.IsPrivate():
		return "private"
	case ip.IsLinkLocalUnicast():
		return "link-local"
	case ip.IsMulticast(), ip.IsLinkLocalMulticast(), ip.IsInterfaceLocalMulticast():
		return "multicast"
	case ip.IsUnspecified():
		return "unspecified"
	}
	for _, r := range extraRanges {
		if r.prefix.Contains(ip) {
			return r.kind
		}
	}
	return ""
}
