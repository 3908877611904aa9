package compat_test

import (
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
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

// The document is well-formed OpenAPI 3.0 as far as these tests read it
// (no OpenAPI validator is a dependency): known fields where it matters,
// a description on every response, path parameters declared, every $ref
// local, of the right kind and resolving, every component used, and every
// error response (4xx, 5xx) a JSON body of the shared Error schema.
func TestOpenAPIIsWellFormed(t *testing.T) {
	sp, err := loadSpec()
	if err != nil {
		t.Fatal(err)
	}
	l := &linter{t: t, sp: sp, used: map[string]bool{}}
	if v, _ := sp.root["openapi"].(string); !regexp.MustCompile(`^3\.0\.\d+$`).MatchString(v) {
		t.Errorf("openapi = %q, want 3.0.x", v)
	}
	info, _ := sp.root["info"].(map[string]any)
	if _, ok := info["title"].(string); !ok {
		t.Error("info has no title")
	}
	if _, ok := info["version"].(string); !ok {
		t.Error("info has no version")
	}
	paths, _ := sp.root["paths"].(map[string]any)
	for path, item := range paths {
		l.pathItem(path, item)
	}
	components, _ := sp.root["components"].(map[string]any)
	var defined []string
	for section, lint := range map[string]func(any, string){
		"schemas": l.schema, "responses": l.response, "headers": l.header, "parameters": l.parameter,
		"requestBodies": l.requestBody, "securitySchemes": func(any, string) {},
	} {
		entries, _ := components[section].(map[string]any)
		for name, node := range entries {
			ptr := pointer("#/components", section, name)
			if !regexp.MustCompile(`^[a-zA-Z0-9._-]+$`).MatchString(name) {
				t.Errorf("%s: not a valid component name", ptr)
			}
			lint(node, ptr)
			if section != "securitySchemes" {
				defined = append(defined, ptr)
			}
		}
	}
	for _, ptr := range defined { // once every component is linted, and its $refs seen
		if !l.used[ptr] {
			t.Errorf("%s is not used", ptr)
		}
	}
	schemes, _ := components["securitySchemes"].(map[string]any)
	security, _ := sp.root["security"].([]any)
	for _, req := range security {
		req, _ := req.(map[string]any)
		for name := range req {
			if schemes[name] == nil {
				t.Errorf("security names %q, which is no security scheme", name)
			}
		}
	}
}

// linter checks the parts of the document, keeping the components that
// $refs reach.
type linter struct {
	t    *testing.T
	sp   *spec
	used map[string]bool
}

var (
	statusKey  = regexp.MustCompile(`^([1-5]XX|[1-5][0-9][0-9]|default)$`)
	pathParam  = regexp.MustCompile(`\{([^}]+)\}`)
	itemFields = []string{"summary", "description", "parameters", "servers", "get", "put", "post", "delete", "options", "head", "patch", "trace"}
)

// object returns the node as an object to lint, or, for a $ref (which
// must be local, name a component of the section and resolve; the
// component is linted on its own), ok false.
func (l *linter) object(node any, ptr, section string) (map[string]any, bool) {
	m, ok := node.(map[string]any)
	if !ok {
		l.t.Errorf("%s is not an object", ptr)
		return nil, false
	}
	ref, isRef := m["$ref"].(string)
	if !isRef {
		return m, true
	}
	if !strings.HasPrefix(ref, "#/components/"+section+"/") || strings.Count(ref, "/") != 3 {
		l.t.Errorf("%s: $ref %q is not a component of components/%s", ptr, ref, section)
	} else if len(m) > 1 {
		l.t.Errorf("%s: a $ref with other fields beside it", ptr)
	} else if _, ok := l.sp.lookup(ref); !ok {
		l.t.Errorf("%s: $ref %q does not resolve", ptr, ref)
	}
	l.used[ref] = true
	return nil, false
}

func (l *linter) pathItem(path string, node any) {
	ptr := pointer("#/paths", path)
	item, ok := node.(map[string]any)
	if !ok || !strings.HasPrefix(path, "/") {
		l.t.Errorf("%s: not a path item of a path starting with /", ptr)
		return
	}
	// params lints a list of parameters and adds the path ones to declared.
	params := func(node any, at string, declared map[string]bool) {
		list, _ := node.([]any)
		for i, p := range list {
			pptr := pointer(at, "parameters", strconv.Itoa(i))
			l.parameter(p, pptr)
			if p, _, err := l.sp.resolve(p, pptr); err == nil && p["in"] == "path" {
				declared[fmt.Sprint(p["name"])] = true
			}
		}
	}
	onPath := map[string]bool{}
	params(item["parameters"], ptr, onPath)
	for field, op := range item {
		if !slices.Contains(itemFields, field) {
			l.t.Errorf("%s: unknown field %q", ptr, field)
		}
		if field == "parameters" || field == "summary" || field == "description" || field == "servers" {
			continue
		}
		op, _ := op.(map[string]any)
		at := pointer(ptr, field)
		declared := maps.Clone(onPath)
		params(op["parameters"], at, declared)
		for _, m := range pathParam.FindAllStringSubmatch(path, -1) {
			if !declared[m[1]] {
				l.t.Errorf("%s: path parameter %q is not declared", at, m[1])
			}
		}
		if body, ok := op["requestBody"]; ok {
			l.requestBody(body, pointer(at, "requestBody"))
		}
		responses, _ := op["responses"].(map[string]any)
		if len(responses) == 0 {
			l.t.Errorf("%s has no responses", at)
		}
		for status, resp := range responses {
			rptr := pointer(at, "responses", status)
			if !statusKey.MatchString(status) {
				l.t.Errorf("%s: %q is not a status", rptr, status)
			}
			l.response(resp, rptr)
			if status[0] == '4' || status[0] == '5' {
				l.errorBody(resp, rptr)
			}
		}
	}
}

// errorBody checks that an error response is JSON of the shared Error schema.
func (l *linter) errorBody(node any, ptr string) {
	resp, _, _ := l.sp.resolve(node, ptr)
	content, _ := resp["content"].(map[string]any)
	media, _ := content["application/json"].(map[string]any)
	schema, _ := media["schema"].(map[string]any)
	if len(content) != 1 || schema["$ref"] != "#/components/schemas/Error" || len(schema) != 1 {
		l.t.Errorf("%s: an error response whose body is not application/json of #/components/schemas/Error", ptr)
	}
}

func (l *linter) response(node any, ptr string) {
	resp, ok := l.object(node, ptr, "responses")
	if !ok {
		return
	}
	if d, _ := resp["description"].(string); d == "" {
		l.t.Errorf("%s has no description", ptr)
	}
	headers, _ := resp["headers"].(map[string]any)
	for name, h := range headers {
		l.header(h, pointer(ptr, "headers", name))
	}
	if c, ok := resp["content"]; ok {
		l.content(c, ptr)
	}
}

func (l *linter) requestBody(node any, ptr string) {
	if rb, ok := l.object(node, ptr, "requestBodies"); ok {
		l.content(rb["content"], ptr)
	}
}

func (l *linter) content(node any, ptr string) {
	content, ok := node.(map[string]any)
	if !ok || len(content) == 0 {
		l.t.Errorf("%s: content is not a map of media types", ptr)
	}
	for media, m := range content {
		m, _ := m.(map[string]any)
		if s, ok := m["schema"]; ok {
			l.schema(s, pointer(ptr, "content", media, "schema"))
		}
	}
}

func (l *linter) header(node any, ptr string) {
	if h, ok := l.object(node, ptr, "headers"); ok {
		if h["name"] != nil || h["in"] != nil {
			l.t.Errorf("%s: a header has no name or in", ptr)
		}
		l.schema(h["schema"], pointer(ptr, "schema")) // required: nil is no object
	}
}

func (l *linter) parameter(node any, ptr string) {
	p, ok := l.object(node, ptr, "parameters")
	if !ok {
		return
	}
	if name, _ := p["name"].(string); name == "" || !slices.Contains([]any{"path", "query", "header", "cookie"}, p["in"]) {
		l.t.Errorf("%s: a parameter needs a name and in (path, query, header or cookie)", ptr)
	}
	if p["in"] == "path" && p["required"] != true {
		l.t.Errorf("%s: a path parameter must be required", ptr)
	}
	l.schema(p["schema"], pointer(ptr, "schema"))
}

func (l *linter) schema(node any, ptr string) {
	s, ok := l.object(node, ptr, "schemas")
	if !ok {
		return
	}
	if typ, ok := s["type"]; ok && !slices.Contains([]any{"object", "array", "string", "integer", "number", "boolean"}, typ) {
		l.t.Errorf("%s: unknown type %v", ptr, typ)
	}
	props, _ := s["properties"].(map[string]any)
	for name, p := range props {
		l.schema(p, pointer(ptr, "properties", name))
	}
	if req, ok := s["required"].([]any); ok && props != nil {
		for _, name := range req {
			if _, ok := props[name.(string)]; !ok {
				l.t.Errorf("%s: required %q is not a property", ptr, name)
			}
		}
	}
	if items, ok := s["items"]; ok {
		l.schema(items, pointer(ptr, "items"))
	}
	for _, kw := range []string{"allOf", "oneOf", "anyOf"} {
		list, _ := s[kw].([]any)
		for i, sub := range list {
			l.schema(sub, pointer(ptr, kw, strconv.Itoa(i)))
		}
	}
}
