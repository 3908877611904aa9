package compat_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/imageservice/imageservice/compat"
)

// openAPIDoc is the part of an OpenAPI 3 document the test reads.
type openAPIDoc struct {
	OpenAPI string                    `yaml:"openapi"`
	Paths   map[string]map[string]any `yaml:"paths"`
}

// The OpenAPI document parses, is OpenAPI 3, and describes every route of
// both services (and no route that does not exist), each with responses.
func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	var doc openAPIDoc
	if err := yaml.Unmarshal(compat.OpenAPI, &doc); err != nil {
		t.Fatalf("openapi.yaml does not parse: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi = %q, want 3.x", doc.OpenAPI)
	}
	api := compat.New(compat.Config{})
	want := map[string]bool{"get " + compat.OpenAPIPath: true}
	for _, rt := range api.UploadRoutes() {
		want[strings.ToLower(rt.Method)+" "+compat.UploadPrefix+rt.Path] = true
	}
	for _, rt := range api.DitherRoutes() {
		want[strings.ToLower(rt.Method)+" "+compat.DitherPrefix+rt.Path] = true
	}
	for key := range want {
		method, path, _ := strings.Cut(key, " ")
		op, ok := doc.Paths[path][method].(map[string]any)
		if !ok {
			t.Errorf("openapi.yaml does not describe %s", key)
		} else if _, ok := op["responses"]; !ok {
			t.Errorf("%s has no responses", key)
		}
	}
	for path, item := range doc.Paths {
		for method := range item {
			if method != "parameters" && !want[method+" "+path] {
				t.Errorf("openapi.yaml describes %s %s, which is not a route", method, path)
			}
		}
	}
}

// The document is served at /compat/openapi.yaml by Mount.
func TestOpenAPIServed(t *testing.T) {
	mux := http.NewServeMux()
	compat.New(compat.Config{}).Mount(mux)
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("GET", compat.OpenAPIPath, nil))
	body, _ := io.ReadAll(rec.Body)
	if rec.Code != 200 || string(body) != string(compat.OpenAPI) {
		t.Fatalf("GET %s = %d (%d bytes)", compat.OpenAPIPath, rec.Code, len(body))
	}
}
