package compat

import (
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/imageservice/imageservice/auth"
)

// Route is one endpoint of an old service: a method and a path pattern
// in net/http syntax ("/images/{uuid}").
type Route struct {
	Method, Path string
	// Scope is the API-key scope the endpoint needs (auth.ScopeRead,
	// auth.ScopeWrite), or "" for none.
	Scope   string
	handler http.HandlerFunc
	// refused marks an old endpoint the new model cannot honour: it is
	// served (with an explanation) but not listed in Allow headers.
	refused bool
}

// uploadRoutes are the upload service's endpoints (old port 5000).
func (a *API) uploadRoutes() []Route {
	return []Route{
		{Method: http.MethodGet, Path: "/health", handler: health},
		{Method: http.MethodGet, Path: "/images", Scope: auth.ScopeRead, handler: a.listImages},
		{Method: http.MethodPost, Path: "/images", Scope: auth.ScopeWrite, handler: a.uploadImage},
		{Method: http.MethodGet, Path: "/images/{uuid}", Scope: auth.ScopeRead, handler: a.getImage},
		{Method: http.MethodDelete, Path: "/images/{uuid}", Scope: auth.ScopeWrite, handler: a.deleteImage},
	}
}

// ditherRoutes are the dithering service's endpoints (old port 5001).
func (a *API) ditherRoutes() []Route {
	return []Route{
		{Method: http.MethodGet, Path: "/health", handler: health},
		{Method: http.MethodGet, Path: "/images", Scope: auth.ScopeRead, handler: a.listDithers},
		{Method: http.MethodGet, Path: "/images/{uuid}", Scope: auth.ScopeRead, handler: a.getDither},
		{Method: http.MethodDelete, Path: "/images/{uuid}", handler: deleteDither, refused: true},
		{Method: http.MethodPost, Path: "/images/{uuid}/{channels}", Scope: auth.ScopeWrite, handler: a.requestDither},
	}
}

// UploadRoutes lists the upload service's endpoints, paths relative to
// its root.
func (a *API) UploadRoutes() []Route { return a.uploadRoutes() }

// DitherRoutes lists the dithering service's endpoints, paths relative to
// its root.
func (a *API) DitherRoutes() []Route { return a.ditherRoutes() }

// newMux serves the routes, answering unknown paths with a JSON 404 and
// known paths with another method with a JSON 405 and an Allow header.
func (a *API) newMux(routes []Route) *http.ServeMux {
	mux := http.NewServeMux()
	allowed := map[string][]string{}
	var paths []string
	for _, rt := range routes {
		mux.HandleFunc(rt.Method+" "+rt.Path, a.requireScope(rt.Scope, rt.handler))
		if rt.refused {
			continue
		}
		if _, ok := allowed[rt.Path]; !ok {
			paths = append(paths, rt.Path)
		}
		allowed[rt.Path] = append(allowed[rt.Path], rt.Method)
	}
	for _, p := range paths {
		mux.HandleFunc(p, methodNotAllowed(allowed[p]))
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, CodeRouteNotFound, fmt.Sprintf("no such endpoint: %s %s", r.Method, r.URL.Path))
	})
	return mux
}

// methodNotAllowed answers 405 with the methods the path allows.
func methodNotAllowed(methods []string) http.HandlerFunc {
	if slices.Contains(methods, http.MethodGet) {
		methods = append(slices.Clone(methods), http.MethodHead)
	}
	allow := strings.Join(methods, ", ")
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		writeError(w, http.StatusMethodNotAllowed, CodeMethodNotAllowed,
			fmt.Sprintf("%s is not allowed on %s (allowed: %s)", r.Method, r.URL.Path, allow))
	}
}

// health answers the old GET /health.
func health(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}
