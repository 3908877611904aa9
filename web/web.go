// Package web is the service's browser frontend: static HTML, CSS and
// JavaScript modules embedded in the binary, with no build step. Handler
// serves them at the root of the site; the single page routes by the URL
// fragment (#/images/<id>), so every page is index.html.
package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

//go:embed static
var static embed.FS

// contentTypes maps the extensions of the embedded files to their media
// types (explicit, so the answer does not depend on the host's mime.types).
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".svg":  "image/svg+xml",
	".png":  "image/png",
	".json": "application/json",
}

// pagePolicy is the Content-Security-Policy of the page: only its own
// scripts, styles, images and connections (the websocket included).
const pagePolicy = "default-src 'self'; img-src 'self' data: blob:; connect-src 'self'; " +
	"object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// asset is one embedded file, ready to serve.
type asset struct {
	name        string
	data        []byte
	contentType string
	etag        string
}

// Handler serves the frontend: GET and HEAD / (the page) and the files
// under it. Files are revalidated on every use by their ETag (a hash of
// their content); anything else is 404.
func Handler() http.Handler {
	assets, err := load()
	if err != nil {
		panic(err) // the embedded files are fixed at build time
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		serve(w, r, assets)
	})
}

// load reads every embedded file and computes its ETag.
func load() (map[string]asset, error) {
	root, err := fs.Sub(static, "static")
	if err != nil {
		return nil, fmt.Errorf("web: open embedded files: %w", err)
	}
	assets := map[string]asset{}
	err = fs.WalkDir(root, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(root, name)
		if err != nil {
			return fmt.Errorf("read %s: %w", name, err)
		}
		sum := sha256.Sum256(data)
		ct, ok := contentTypes[path.Ext(name)]
		if !ok {
			ct = "application/octet-stream"
		}
		assets["/"+name] = asset{name: name, data: data, contentType: ct, etag: `"` + hex.EncodeToString(sum[:16]) + `"`}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("web: load embedded files: %w", err)
	}
	return assets, nil
}

// serve answers one request from assets.
func serve(w http.ResponseWriter, r *http.Request, assets map[string]asset) {
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h.Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	p := r.URL.Path
	if p == "/" {
		p = "/index.html"
	}
	a, ok := assets[p]
	if !ok || strings.Contains(p, "..") {
		http.NotFound(w, r)
		return
	}
	h.Set("Content-Type", a.contentType)
	h.Set("ETag", a.etag)
	h.Set("Cache-Control", "no-cache")
	if strings.HasPrefix(a.contentType, "text/html") {
		h.Set("Content-Security-Policy", pagePolicy)
		h.Set("Referrer-Policy", "same-origin")
	}
	http.ServeContent(w, r, a.name, time.Time{}, bytes.NewReader(a.data))
}
