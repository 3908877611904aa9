package server

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/imageservice/imageservice/auth"
	"github.com/imageservice/imageservice/graph"
)

// rateLimiter bounds the writes of each client: an API key, or the
// address of a request without one. Reads are not limited.
type rateLimiter struct {
	perSecond rate.Limit
	burst     int
	proxies   TrustedProxies

	mu      sync.Mutex
	clients map[string]*client
}

type client struct {
	limiter *rate.Limiter
	seen    time.Time
}

// newRateLimiter allows each client perSecond writes on average, in
// bursts of burst; the proxies name the clients behind them. A zero rate
// turns limiting off.
func newRateLimiter(perSecond float64, burst int, proxies TrustedProxies) *rateLimiter {
	return &rateLimiter{perSecond: rate.Limit(perSecond), burst: max(burst, 1), proxies: proxies, clients: map[string]*client{}}
}

// middleware answers 429 with Retry-After when a client's uploads or REST
// writes come too fast, before their bodies are read. Every other request
// carries its client's name in its context, for admitMutation: GraphQL
// mutations sent as JSON or over a websocket are only known to be writes
// once parsed.
func (l *rateLimiter) middleware(next http.Handler, isWrite func(*http.Request) bool) http.Handler {
	if l.perSecond <= 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := l.proxies.clientKey(r)
		if isWrite(r) {
			if wait, ok := l.allow(key); !ok {
				w.Header().Set("Retry-After", strconv.Itoa(graph.RetryAfterSeconds(wait)))
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusTooManyRequests)
				_, _ = w.Write([]byte(`{"errors":[{"message":"too many writes; retry later","extensions":{"code":"RATE_LIMITED"}}],"error":{"code":"RATE_LIMITED","message":"too many writes; retry later"}}`))
				return
			}
			key = "" // admitted: its mutation must not take a second token
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), clientKeyKey{}, key)))
	})
}

// clientKeyKey holds, in a request's context, the client's name for the
// rate limiter, or "" when the request's write was already admitted.
type clientKeyKey struct{}

// admitMutation takes a token for a GraphQL mutation, from the bucket of
// the client named in ctx by middleware; a websocket authenticated in its
// connection_init payload uses its key's own bucket. It reports how long
// to wait when the client has none left.
func (l *rateLimiter) admitMutation(ctx context.Context) (time.Duration, bool) {
	key, limited := ctx.Value(clientKeyKey{}).(string)
	if l.perSecond <= 0 || !limited || key == "" {
		return 0, true
	}
	if p := auth.FromContext(ctx); p.KeyID != "" && strings.HasPrefix(key, "addr:") {
		key = "id:" + p.KeyID
	}
	return l.allow(key)
}

// isWrite reports a request to the main address that writes: a multipart
// GraphQL post (an upload, always a mutation), or a write to the
// compatibility API.
func isWrite(r *http.Request) bool {
	if strings.HasPrefix(r.URL.Path, "/compat/") {
		return isRESTWrite(r)
	}
	return r.Method == http.MethodPost && strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/form-data")
}

// isRESTWrite reports a write to the compatibility API: a POST or DELETE.
func isRESTWrite(r *http.Request) bool {
	return r.Method == http.MethodPost || r.Method == http.MethodDelete
}

// allow takes a token of the client's bucket, or says how long to wait.
func (l *rateLimiter) allow(key string) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	c, ok := l.clients[key]
	if !ok {
		if len(l.clients) > 100_000 {
			l.evict(now)
		}
		c = &client{limiter: rate.NewLimiter(l.perSecond, l.burst)}
		l.clients[key] = c
	}
	c.seen = now
	res := c.limiter.ReserveN(now, 1)
	if d := res.DelayFrom(now); d > 0 {
		res.CancelAt(now)
		return d, false
	}
	return 0, true
}

// evict forgets clients idle for a minute; the lock is held.
func (l *rateLimiter) evict(now time.Time) {
	for k, c := range l.clients {
		if now.Sub(c.seen) > time.Minute {
			delete(l.clients, k)
		}
	}
}
