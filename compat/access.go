package compat

import (
	"context"
	"net/http"

	"github.com/imageservice/imageservice/auth"
)

// Codes of refused requests, as the GraphQL API names them.
const (
	CodeUnauthenticated = "UNAUTHENTICATED"
	CodeForbidden       = "FORBIDDEN"
)

// requireScope refuses a request whose principal (set by the service's
// API-key middleware) lacks scope: 401 without a key, 403 with a key that
// does not hold it. Reads are open to requests without a key when the
// service's reads are public. An empty scope lets every request through.
func (a *API) requireScope(scope string, next http.HandlerFunc) http.HandlerFunc {
	if scope == "" {
		return next
	}
	return func(w http.ResponseWriter, r *http.Request) {
		p := auth.FromContext(r.Context())
		if p.Permits(scope, !a.cfg.PrivateReads) {
			next(w, r)
			return
		}
		if p.KeyID == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="imageservice"`)
			writeError(w, http.StatusUnauthorized, CodeUnauthenticated, "this endpoint needs an API key with the "+scope+" scope")
			return
		}
		writeError(w, http.StatusForbidden, CodeForbidden, "this API key does not hold the "+scope+" scope")
	}
}

// visible reports whether the request's principal may read an image
// owned by owner: always, unless reads are private, when only its owner
// and admins may.
func (a *API) visible(ctx context.Context, owner string) bool {
	return auth.FromContext(ctx).Sees(owner, a.cfg.PrivateReads)
}
