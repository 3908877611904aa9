package server_test

import (
	"encoding/json"
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"github.com/coder/websocket"

	"github.com/imageservice/imageservice/auth"
	"github.com/imageservice/imageservice/server"
)

// loopback is the address test clients connect from, trusted as a proxy
// where a test puts the service behind one.
var loopback = server.TrustedProxies{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}

// uploadFrom uploads as a client that a proxy names in X-Forwarded-For
// (none when forwardedFor is ""), and returns 429 when the upload was
// rate limited, else 200.
func (e *env) uploadFrom(forwardedFor string) int {
	e.t.Helper()
	req := e.uploadRequest("p.png", pngBytes(2, 2), nil)
	if forwardedFor != "" {
		req.Header.Set("X-Forwarded-For", forwardedFor)
	}
	var res uploadResult
	if r := e.send(req, &res); errorCodes(r) == "RATE_LIMITED" {
		return http.StatusTooManyRequests
	}
	return http.StatusOK
}

// Behind a trusted proxy the write budget is the client's that
// X-Forwarded-For names: two clients behind one proxy are limited apart,
// and a client that prepends a forged address to the header is still
// counted as itself.
func TestWriteRateBehindTrustedProxy(t *testing.T) {
	e := start(t, server.Config{NoProcessors: true, WriteRate: 0.001, WriteBurst: 2, TrustedProxies: loopback})
	for range 2 {
		if code := e.uploadFrom("203.0.113.1"); code != http.StatusOK {
			t.Fatalf("an upload of the burst: %d", code)
		}
	}
	if code := e.uploadFrom("203.0.113.1"); code != http.StatusTooManyRequests {
		t.Fatalf("the third upload of a burst of 2: %d, want 429", code)
	}
	if code := e.uploadFrom("198.51.100.9, 203.0.113.1"); code != http.StatusTooManyRequests {
		t.Fatalf("the client with a forged address prepended: %d, want 429", code)
	}
	if code := e.uploadFrom("203.0.113.2"); code != http.StatusOK {
		t.Fatalf("another client behind the proxy: %d, want 200", code)
	}
	if code := e.uploadFrom("203.0.113.3, 127.0.0.1"); code != http.StatusOK {
		t.Fatalf("a client behind two trusted proxies: %d, want 200", code)
	}
}

// From a peer that is not a trusted proxy, X-Forwarded-For is ignored: a
// client cannot claim a fresh budget by naming another address.
func TestWriteRateIgnoresForwardedForFromUntrustedPeers(t *testing.T) {
	e := start(t, server.Config{NoProcessors: true, WriteRate: 0.001, WriteBurst: 2})
	e.uploadFrom("203.0.113.1")
	e.uploadFrom("203.0.113.2")
	if code := e.uploadFrom("203.0.113.3"); code != http.StatusTooManyRequests {
		t.Fatalf("the third upload of a burst of 2 under a new forwarded address: %d, want 429", code)
	}
}

// dialLive opens a GraphQL websocket as dialRaw does.
func dialLive(t *testing.T, e *env, header http.Header) (*websocket.Conn, int, string) {
	t.Helper()
	return dialRaw(t, e, "graphql-transport-ws", header)
}

// A client may hold LiveConnectionsPerClient websockets and event streams
// open at once: one more is refused with 429 TOO_MANY_CONNECTIONS before
// the upgrade, another client (here an API key) is not held back, and
// closing a connection frees its place.
func TestLiveConnectionsPerClient(t *testing.T) {
	e := start(t, server.Config{NoProcessors: true, LiveConnectionsPerClient: 2})
	first, _, _ := dialLive(t, e, nil)
	sse := e.openSSE(`subscription { ditherCompleted { id } }`, nil)
	if sse.StatusCode != http.StatusOK || first == nil {
		t.Fatalf("the first two connections: websocket %v, event stream %d", first != nil, sse.StatusCode)
	}
	c, status, body := dialLive(t, e, nil)
	if c != nil || status != http.StatusTooManyRequests || !strings.Contains(body, "TOO_MANY_CONNECTIONS") {
		t.Fatalf("a third connection: %d %s, want 429 TOO_MANY_CONNECTIONS", status, body)
	}
	var refusal struct{ Errors []struct{ Message string } }
	if err := json.Unmarshal([]byte(body), &refusal); err != nil || len(refusal.Errors) != 1 || refusal.Errors[0].Message == "" {
		t.Fatalf("the refusal %q is not a GraphQL error with a message", body)
	}
	key := createKey(t, e, "other", auth.ScopeRead)
	if c, status, body := dialLive(t, e, http.Header{"Authorization": {"Bearer " + key}}); c == nil {
		t.Fatalf("another client was refused: %d %s", status, body)
	}
	first.Close(websocket.StatusNormalClosure, "")
	eventually(t, "the closed websocket's place to be free", func() bool {
		c, _, _ := dialLive(t, e, nil)
		return c != nil
	})
}

// An API key is one client however its Authorization header is spaced:
// the service reads "Bearer   <key>" as "Bearer <key>", so the limits
// must too, or a key would claim a fresh share of each with every extra
// space.
func TestClientLimitsIgnoreTheSpacingOfTheKey(t *testing.T) {
	e := start(t, server.Config{NoProcessors: true, LiveConnectionsPerClient: 1, WriteRate: 0.001, WriteBurst: 1})
	key := createKey(t, e, "spaced", auth.ScopeRead, auth.ScopeWrite)
	bearer := func(spaces int) http.Header {
		return http.Header{"Authorization": {"Bearer" + strings.Repeat(" ", spaces) + key}}
	}
	if c, status, body := dialLive(t, e, bearer(1)); c == nil {
		t.Fatalf("the key's first websocket: %d %s", status, body)
	}
	if c, status, body := dialLive(t, e, bearer(3)); c != nil || status != http.StatusTooManyRequests {
		t.Fatalf("a second websocket of the key, spaced otherwise: %d %s, want 429 TOO_MANY_CONNECTIONS", status, body)
	}

	upload := func(spaces int) string {
		req := e.uploadRequest("p.png", pngBytes(2, 2), nil)
		req.Header["Authorization"] = bearer(spaces)["Authorization"]
		var res uploadResult
		return errorCodes(e.send(req, &res))
	}
	if codes := upload(1); codes != "" {
		t.Fatalf("the key's first upload: %s", codes)
	}
	if codes := upload(2); codes != "RATE_LIMITED" {
		t.Fatalf("a second upload of the key, spaced otherwise, with a burst of 1: %q, want RATE_LIMITED", codes)
	}
}

// Only what gqlgen serves as a long-lived connection counts against
// LiveConnectionsPerClient: an upload (a multipart POST) whose client
// accepts an event stream too, as urql's and graphql-sse's do on every
// request, is answered as a plain request, and goes through while the
// client holds as many connections as it may.
func TestUploadAcceptingEventStreamsIsNotALiveConnection(t *testing.T) {
	e := start(t, server.Config{NoProcessors: true, LiveConnectionsPerClient: 1})
	if c, status, body := dialLive(t, e, nil); c == nil {
		t.Fatalf("the client's websocket: %d %s", status, body)
	}
	req := e.uploadRequest("p.png", pngBytes(2, 2), nil)
	req.Header.Set("Accept", "application/graphql-response+json, application/json, text/event-stream, multipart/mixed")
	var res uploadResult
	if r := e.send(req, &res); len(r.Errors) > 0 || res.UploadImage.Image == nil {
		t.Fatalf("an upload accepting event streams, with the client's one connection open: %s %+v", r.Data, r.Errors)
	}
}

// Behind a trusted proxy too, the IPv6 addresses of one /64 are one
// client: rotating through them gives no fresh budget.
func TestWriteRateCountsAnIPv6ClientByItsSlash64(t *testing.T) {
	e := start(t, server.Config{NoProcessors: true, WriteRate: 0.001, WriteBurst: 2, TrustedProxies: loopback})
	e.uploadFrom("2001:db8:1:2::1")
	e.uploadFrom("2001:db8:1:2::2")
	if code := e.uploadFrom("2001:db8:1:2::3"); code != http.StatusTooManyRequests {
		t.Fatalf("a third address of the /64: %d, want 429", code)
	}
	if code := e.uploadFrom("2001:db8:1:3::1"); code != http.StatusOK {
		t.Fatalf("another /64: %d, want 200", code)
	}
}
