package server

import (
	"fmt"
	"mime"
	"net/http"
	"strings"
	"sync"
)

// DefaultLiveConnectionsPerClient is how many websockets and event
// streams one client may hold open at once on a replica by default.
const DefaultLiveConnectionsPerClient = 32

// liveLimiter bounds the long-lived GraphQL connections (websockets and
// server-sent event streams) that each client (an API key, or the address
// of a request without one) holds open at once: each costs goroutines and
// up to 100 subscriptions with their buffers, so one client must not be
// able to open them without end.
type liveLimiter struct {
	max     int
	proxies TrustedProxies

	mu   sync.Mutex
	open map[string]int
}

// newLiveLimiter allows each client max live connections; max < 0 turns
// the limit off and 0 means DefaultLiveConnectionsPerClient.
func newLiveLimiter(max int, proxies TrustedProxies) *liveLimiter {
	if max == 0 {
		max = DefaultLiveConnectionsPerClient
	}
	return &liveLimiter{max: max, proxies: proxies, open: map[string]int{}}
}

// middleware answers 429 TOO_MANY_CONNECTIONS to a websocket upgrade or
// an event stream of a client that holds as many as it may, before the
// upgrade; it counts the others until their handler returns.
func (l *liveLimiter) middleware(next http.Handler) http.Handler {
	if l.max < 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !isLive(r) {
			next.ServeHTTP(w, r)
			return
		}
		key := l.proxies.clientKey(r)
		if !l.take(key) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusTooManyRequests)
			msg := fmt.Sprintf("a client may hold at most %d websockets and event streams open at once; close one first", l.max)
			_, _ = fmt.Fprintf(w, `{"errors":[{"message":%q,"extensions":{"code":"TOO_MANY_CONNECTIONS"}}]}`, msg)
			return
		}
		defer l.release(key)
		next.ServeHTTP(w, r)
	})
}

// isLive reports a request that opens a long-lived GraphQL connection,
// as gqlgen's transports (Websocket, SSE) recognise them: a websocket
// upgrade, or a POST of JSON that accepts an event stream. A request of
// another type that accepts one too (a multipart upload from a client
// that accepts event streams on every request) is served by another
// transport, as a plain request.
func isLive(r *http.Request) bool {
	if r.Header.Get("Upgrade") != "" {
		return true
	}
	if r.Method != http.MethodPost || !strings.Contains(r.Header.Get("Accept"), "text/event-stream") {
		return false
	}
	mediaType, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return err == nil && mediaType == "application/json"
}

// take counts a connection of the client, or reports that it holds the
// most it may.
func (l *liveLimiter) take(key string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[key] >= l.max {
		return false
	}
	l.open[key]++
	return true
}

// release forgets a connection of the client.
func (l *liveLimiter) release(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[key]--; l.open[key] <= 0 {
		delete(l.open, key)
	}
}
