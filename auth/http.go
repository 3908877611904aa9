package auth

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Middleware authenticates each request by its "Authorization: Bearer"
// key and puts the principal in the request's context. A bad or revoked
// key is refused with 401; a request without a key acts as Anonymous, or,
// while no key exists, with every scope (the open mode).
func (k *Keys) Middleware(log *slog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p, err := k.PrincipalOf(r.Context(), r.Header.Get("Authorization"))
			if err != nil {
				status := http.StatusUnauthorized
				msg := "invalid or revoked API key"
				if !errors.Is(err, ErrBadKey) && !errors.Is(err, ErrRevoked) {
					log.ErrorContext(r.Context(), "authenticate", "err", err)
					status, msg = http.StatusServiceUnavailable, "cannot check API keys right now"
				}
				writeError(w, status, msg)
				return
			}
			next.ServeHTTP(w, r.WithContext(WithPrincipal(r.Context(), p)))
		})
	}
}

// PrincipalOf returns the principal of an Authorization header value
// ("Bearer <key>", or "" for none), for HTTP requests and for a
// websocket's connection_init payload alike.
func (k *Keys) PrincipalOf(ctx context.Context, header string) (Principal, error) {
	if header == "" {
		open, err := k.Open(ctx)
		if err != nil {
			return Principal{}, err
		}
		if open {
			return FromContext(context.Background()), nil
		}
		return Anonymous, nil
	}
	token, ok := BearerToken(header)
	if !ok {
		return Principal{}, ErrBadKey
	}
	return k.Authenticate(ctx, token)
}

// BearerToken returns the key of an Authorization header value ("Bearer
// <key>"), as PrincipalOf reads it: without the spaces around it, so
// that "Bearer  <key>" is the same key. It returns false for a value of
// another scheme.
func BearerToken(header string) (string, bool) {
	token, ok := strings.CutPrefix(header, "Bearer ")
	return strings.TrimSpace(token), ok
}

// RetryAfterUnavailable is how long a client is asked to wait when API
// keys cannot be checked (the database is unreachable).
const RetryAfterUnavailable = 5 * time.Second

// writeError answers a request that cannot be authenticated, in the
// shapes of both APIs: GraphQL's "errors" and the REST API's "error".
// A 401 says how to authenticate (WWW-Authenticate); a 503, when to try
// again (Retry-After).
func writeError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	code := "UNAUTHENTICATED"
	if status == http.StatusServiceUnavailable {
		code = "UNAVAILABLE"
		w.Header().Set("Retry-After", strconv.Itoa(int(RetryAfterUnavailable/time.Second)))
	} else {
		w.Header().Set("WWW-Authenticate", `Bearer realm="imageservice"`)
	}
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"errors": []map[string]any{{"message": msg, "extensions": map[string]any{"code": code}}},
		"error":  map[string]string{"code": code, "message": msg},
	})
}
