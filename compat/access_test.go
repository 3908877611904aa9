package compat_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/imageservice/imageservice/auth"
	"github.com/imageservice/imageservice/server"
)

// createKey records an API key and returns its token.
func createKey(t *testing.T, e *env, name string, scopes ...string) string {
	t.Helper()
	_, token, err := e.srv.Keys().Create(context.Background(), name, scopes)
	if err != nil {
		t.Fatal(err)
	}
	return token
}

// address is where the two old services are reached.
type address struct{ name, upload, dither string }

// addresses are the old services under the main address's prefixes and
// on listeners of their own.
func (e *env) addresses() []address {
	return []address{
		{"mounted", e.main + "/compat/upload", e.main + "/compat/dither"},
		{"own listeners", e.upload, e.dither},
	}
}

// uploadAs uploads a PNG with a key and returns the old answer.
func uploadAs(t *testing.T, token, upload string) oldImage {
	t.Helper()
	body, ct := multipartBody(file{"file", "photo.png", pngBytes(8, 8)})
	var img oldImage
	if code, raw := callAs(t, token, "POST", upload+"/images", body, ct, &img); code != http.StatusCreated {
		t.Fatalf("upload = %d %s", code, raw)
	}
	return img
}

// Once an API key exists, the old endpoints need keys with the right
// scopes, on the main address and on the old services' own addresses
// alike: a refused request is answered in the old API's error shape and
// changes nothing.
func TestKeysAndScopes(t *testing.T) {
	e := start(t, server.Config{NoProcessors: true})
	writer := createKey(t, e, "writer", auth.ScopeRead, auth.ScopeWrite)
	reader := createKey(t, e, "reader", auth.ScopeRead)
	for _, c := range e.addresses() {
		t.Run(c.name, func(t *testing.T) {
			img := uploadAs(t, writer, c.upload)
			before := e.eventCount()
			png := pngBytes(8, 8)
			for _, r := range []struct {
				token, method, url string
				status             int
				code               string
			}{
				{"", "POST", c.upload + "/images", http.StatusUnauthorized, "UNAUTHENTICATED"},
				{"", "DELETE", c.upload + "/images/" + img.UUID, http.StatusUnauthorized, "UNAUTHENTICATED"},
				{"", "POST", c.dither + "/images/" + img.UUID + "/4", http.StatusUnauthorized, "UNAUTHENTICATED"},
				{reader, "POST", c.upload + "/images", http.StatusForbidden, "FORBIDDEN"},
				{reader, "DELETE", c.upload + "/images/" + img.UUID, http.StatusForbidden, "FORBIDDEN"},
				{reader, "POST", c.dither + "/images/" + img.UUID + "/4", http.StatusForbidden, "FORBIDDEN"},
				{"isk_bogus_key", "GET", c.upload + "/images", http.StatusUnauthorized, "UNAUTHENTICATED"},
			} {
				body, ct := multipartBody(file{"file", "photo.png", png})
				wantErrorAs(t, r.token, r.method, r.url, body, ct, r.status, r.code)
			}
			if n := e.eventCount(); n != before {
				t.Errorf("refused requests appended %d events", n-before)
			}
			// Reads stay public; the writer may write.
			var one oldImageOne
			if code, raw := call(t, "GET", c.upload+"/images/"+img.UUID, nil, "", &one); code != http.StatusOK {
				t.Errorf("anonymous read = %d %s", code, raw)
			}
			if code, raw := callAs(t, writer, "DELETE", c.upload+"/images/"+img.UUID, nil, "", nil); code != http.StatusOK {
				t.Errorf("the writer's delete = %d %s", code, raw)
			}
		})
	}
}

// With private reads (PUBLIC_READ=false), reading needs a key, and a key
// sees only its own images: others' are unknown to it, in lists too.
func TestPrivateReads(t *testing.T) {
	e := start(t, server.Config{NoProcessors: true, PrivateReads: true})
	alice := createKey(t, e, "alice", auth.ScopeRead, auth.ScopeWrite)
	bob := createKey(t, e, "bob", auth.ScopeRead, auth.ScopeWrite)
	admin := createKey(t, e, "ops", auth.ScopeAdmin)
	for _, c := range e.addresses() {
		t.Run(c.name, func(t *testing.T) {
			img := uploadAs(t, alice, c.upload)
			wantError(t, "GET", c.upload+"/images", nil, "", http.StatusUnauthorized, "UNAUTHENTICATED")
			wantError(t, "GET", c.dither+"/images/"+img.UUID, nil, "", http.StatusUnauthorized, "UNAUTHENTICATED")
			wantErrorAs(t, bob, "GET", c.upload+"/images/"+img.UUID, nil, "", http.StatusNotFound, "NOT_FOUND")
			wantErrorAs(t, bob, "GET", c.dither+"/images/"+img.UUID, nil, "", http.StatusNotFound, "NOT_FOUND")
			wantErrorAs(t, bob, "DELETE", c.upload+"/images/"+img.UUID, nil, "", http.StatusNotFound, "NOT_FOUND")
			for _, who := range []struct {
				name, token string
				sees        bool
			}{{"alice", alice, true}, {"admin", admin, true}, {"bob", bob, false}} {
				var list []oldImage
				if code, raw := callAs(t, who.token, "GET", c.upload+"/images", nil, "", &list); code != http.StatusOK {
					t.Fatalf("%s's list = %d %s", who.name, code, raw)
				}
				seen := false
				for _, i := range list {
					seen = seen || i.UUID == img.UUID
				}
				if seen != who.sees {
					t.Errorf("%s's list shows alice's image: %v, want %v", who.name, seen, who.sees)
				}
			}
			var one oldImageOne
			if code, raw := callAs(t, alice, "GET", c.upload+"/images/"+img.UUID, nil, "", &one); code != http.StatusOK || one.UUID != img.UUID {
				t.Errorf("alice's read = %d %s", code, raw)
			}
		})
	}
}

// The old services' own addresses share the main address's write limits
// and security headers.
func TestOwnListenersLimitWrites(t *testing.T) {
	e := start(t, server.Config{NoProcessors: true, WriteRate: 0.001, WriteBurst: 1})
	uploadAs(t, "", e.upload)
	body, ct := multipartBody(file{"file", "photo.png", pngBytes(8, 8)})
	wantError(t, "POST", e.upload+"/images", body, ct, http.StatusTooManyRequests, "RATE_LIMITED")
	wantError(t, "POST", e.main+"/compat/upload/images", body, ct, http.StatusTooManyRequests, "RATE_LIMITED")
	resp, err := http.Get(e.dither + "/images")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("X-Frame-Options"); got != "DENY" {
		t.Errorf("X-Frame-Options = %q, want DENY", got)
	}
}
