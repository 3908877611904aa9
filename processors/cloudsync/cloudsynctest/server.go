// Package cloudsynctest is a local HTTP server that plays Cloudinary's
// upload API for tests: upload and destroy, with request signatures checked
// as Cloudinary documents them, assets kept by public id, and injectable
// failures (rate limits, server errors).
package cloudsynctest

import (
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imageservice/imageservice/processors/cloudsync"
)

// Credentials of a Server unless changed before the first request.
const (
	CloudName = "demo-cloud"
	APIKey    = "123456789012345"
	APISecret = "fake-secret-abcdefghijklmnop"
)

// MaxTimestampSkew is how far a request's timestamp may be from the
// server's clock, as at Cloudinary (one hour).
const MaxTimestampSkew = time.Hour

// Asset is an asset the server keeps.
type Asset struct {
	PublicID string
	Version  int64
	Format   string
	Data     []byte
	// Uploads counts the uploads that wrote this public id.
	Uploads int
}

// Server is a fake Cloudinary upload API. Create it with NewServer.
type Server struct {
	*httptest.Server
	CloudName, APIKey, APISecret string
	// Algorithm is the signature algorithm the account expects:
	// cloudsync.SHA1 (default) or cloudsync.SHA256.
	Algorithm string

	mu       sync.Mutex
	assets   map[string]*Asset
	failures []int
	version  int64
	counts   Counts
}

// Counts are what the server has answered.
type Counts struct {
	Uploads, Destroys, Rejected, Failed int
}

// NewServer starts a server, closed when the test ends.
func NewServer(t testing.TB) *Server {
	s := &Server{CloudName: CloudName, APIKey: APIKey, APISecret: APISecret, assets: map[string]*Asset{}}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

// Config is a client config of the server's account.
func (s *Server) Config() cloudsync.Config {
	return cloudsync.Config{CloudName: s.CloudName, APIKey: s.APIKey, APISecret: s.APISecret,
		UploadPrefix: s.URL, SignatureAlgorithm: s.Algorithm}
}

// FailNext makes the next n requests fail with the HTTP status (420, 429,
// 500, ...) before anything is checked or stored.
func (s *Server) FailNext(status, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.failures = append(s.failures, status)
	}
}

// Asset returns a copy of the asset with the public id.
func (s *Server) Asset(publicID string) (Asset, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.assets[publicID]
	if !ok {
		return Asset{}, false
	}
	return *a, true
}

// AssetCount is the number of assets kept.
func (s *Server) AssetCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.assets)
}

// Counts returns what the server has answered so far.
func (s *Server) Counts() Counts {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts
}

// pathRE matches /v1_1/<cloud>/<resource type>/<action>.
var pathRE = regexp.MustCompile(`^/v1_1/([^/]+)/(image|auto)/(upload|destroy)$`)

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	m := pathRE.FindStringSubmatch(r.URL.Path)
	if r.Method != http.MethodPost || m == nil {
		writeError(w, http.StatusNotFound, "Resource not found - "+r.URL.Path)
		return
	}
	if status, fail := s.nextFailure(); fail {
		_, _ = io.Copy(io.Discard, r.Body)
		s.count(func(c *Counts) { c.Failed++ })
		writeError(w, status, http.StatusText(status))
		return
	}
	if m[1] != s.CloudName {
		writeError(w, http.StatusUnauthorized, "cloud_name mismatch")
		return
	}
	params, file, err := readForm(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if status, msg := s.authenticate(params); status != 0 {
		s.count(func(c *Counts) { c.Rejected++ })
		writeError(w, status, msg)
		return
	}
	if m[3] == "upload" {
		s.upload(w, params, file)
		return
	}
	s.destroy(w, params)
}

func (s *Server) nextFailure() (int, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.failures) == 0 {
		return 0, false
	}
	status := s.failures[0]
	s.failures = s.failures[1:]
	return status, true
}

func (s *Server) count(f func(*Counts)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(&s.counts)
}

// readForm reads a multipart or urlencoded form: its fields and the
// uploaded file's bytes, if any.
func readForm(r *http.Request) (url.Values, []byte, error) {
	if strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/form-data") {
		if err := r.ParseMultipartForm(64 << 20); err != nil {
			return nil, nil, fmt.Errorf("bad multipart form: %v", err)
		}
		params := url.Values(r.MultipartForm.Value)
		fh := r.MultipartForm.File["file"]
		if len(fh) == 0 {
			return params, nil, nil
		}
		f, err := fh[0].Open()
		if err != nil {
			return nil, nil, err
		}
		defer f.Close()
		data, err := io.ReadAll(f)
		return params, data, err
	}
	// cloudinary-go posts url-encoded forms without a Content-Type.
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return nil, nil, fmt.Errorf("read form: %v", err)
	}
	params, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, nil, fmt.Errorf("bad form: %v", err)
	}
	return params, nil, nil
}

// authenticate checks api_key, timestamp and signature as Cloudinary
// does; it returns the error status and message, or 0.
func (s *Server) authenticate(p url.Values) (int, string) {
	if p.Get("api_key") != s.APIKey {
		return http.StatusUnauthorized, "Unknown API key " + p.Get("api_key")
	}
	ts, err := strconv.ParseInt(p.Get("timestamp"), 10, 64)
	if err != nil {
		return http.StatusBadRequest, "Missing required parameter - timestamp"
	}
	if d := time.Since(time.Unix(ts, 0)); d > MaxTimestampSkew || d < -MaxTimestampSkew {
		return http.StatusBadRequest, fmt.Sprintf("Stale request - reported time is %d which is more than 1 hour ago", ts)
	}
	toSign := StringToSign(p)
	want := Sign(toSign, s.APISecret, s.Algorithm)
	if subtle.ConstantTimeCompare([]byte(want), []byte(p.Get("signature"))) != 1 {
		return http.StatusUnauthorized, fmt.Sprintf("Invalid Signature %s. String to sign - '%s'.", p.Get("signature"), toSign)
	}
	return 0, ""
}

// arrayKey matches array parameters such as tags[0] or tags[].
var arrayKey = regexp.MustCompile(`^(.*)\[\d*\]$`)

// StringToSign is Cloudinary's string to sign of request parameters: every
// parameter but file, cloud_name, resource_type, api_key and signature,
// sorted by name, as name=value joined by "&" (array values joined by ",";
// "&" in a value escaped as %26, signature version 2).
func StringToSign(p url.Values) string {
	vals := map[string][]string{}
	for k, v := range p {
		switch k {
		case "file", "cloud_name", "resource_type", "api_key", "signature":
			continue
		}
		if m := arrayKey.FindStringSubmatch(k); m != nil {
			k = m[1]
		}
		vals[k] = append(vals[k], v...)
	}
	keys := make([]string, 0, len(vals))
	for k := range vals {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + strings.ReplaceAll(strings.Join(vals[k], ","), "&", "%26")
	}
	return strings.Join(parts, "&")
}

// Sign is the hex SHA-1 (or SHA-256) of the string to sign followed by the
// API secret.
func Sign(toSign, secret, algorithm string) string {
	var h hash.Hash = sha1.New()
	if algorithm == cloudsync.SHA256 {
		h = sha256.New()
	}
	h.Write([]byte(toSign + secret))
	return hex.EncodeToString(h.Sum(nil))
}

// formats are the image types the server accepts, by detected media type.
var formats = map[string]string{"image/png": "png", "image/jpeg": "jpg", "image/gif": "gif", "image/webp": "webp"}

func (s *Server) upload(w http.ResponseWriter, p url.Values, data []byte) {
	format, ok := formats[http.DetectContentType(data)]
	if len(data) == 0 || !ok {
		writeError(w, http.StatusBadRequest, "Invalid image file")
		return
	}
	publicID := p.Get("public_id")
	if publicID == "" {
		writeError(w, http.StatusBadRequest, "this fake needs a public_id")
		return
	}
	a, existing := s.store(publicID, format, data, p.Get("overwrite") != "false")
	writeJSON(w, http.StatusOK, s.describe(a, existing))
}

// store keeps the upload, unless the asset exists and overwrite is off.
func (s *Server) store(publicID, format string, data []byte, overwrite bool) (Asset, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.counts.Uploads++
	a, existing := s.assets[publicID]
	if existing && !overwrite {
		return *a, true
	}
	if !existing {
		a = &Asset{PublicID: publicID}
		s.assets[publicID] = a
	}
	s.version = max(s.version+1, time.Now().Unix())
	a.Version, a.Format, a.Data = s.version, format, append([]byte(nil), data...)
	a.Uploads++
	return *a, existing
}

func (s *Server) describe(a Asset, overwritten bool) map[string]any {
	sum := md5.Sum(a.Data)
	path := fmt.Sprintf("%s/image/upload/v%d/%s.%s", s.CloudName, a.Version, a.PublicID, a.Format)
	return map[string]any{
		"asset_id": hex.EncodeToString(sum[:]), "public_id": a.PublicID, "version": a.Version,
		"version_id": strconv.FormatInt(a.Version, 16), "format": a.Format, "resource_type": "image",
		"type": "upload", "bytes": len(a.Data), "etag": hex.EncodeToString(sum[:]),
		"created_at": time.Now().UTC().Format(time.RFC3339), "overwritten": overwritten,
		"signature": Sign(fmt.Sprintf("public_id=%s&version=%d", a.PublicID, a.Version), s.APISecret, s.Algorithm),
		"url":       "http://res.cloudinary.com/" + path, "secure_url": "https://res.cloudinary.com/" + path,
	}
}

func (s *Server) destroy(w http.ResponseWriter, p url.Values) {
	publicID := p.Get("public_id")
	if publicID == "" {
		writeError(w, http.StatusBadRequest, "Missing required parameter - public_id")
		return
	}
	s.mu.Lock()
	s.counts.Destroys++
	_, found := s.assets[publicID]
	delete(s.assets, publicID)
	s.mu.Unlock()
	result := "not found"
	if found {
		result = "ok"
	}
	writeJSON(w, http.StatusOK, map[string]string{"result": result})
}

func writeError(w http.ResponseWriter, status int, message string) {
	writeJSON(w, status, map[string]any{"error": map[string]string{"message": message}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
