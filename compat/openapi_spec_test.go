package compat_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"

	"github.com/imageservice/imageservice/compat"
)

// spec is the OpenAPI document, parsed, with what the tests look up in
// it: its operations, their responses, and the JSON schemas of those.
type spec struct {
	root map[string]any
	ops  []operation

	mu       sync.Mutex
	compiler *jsonschema.Compiler
	compiled map[string]*jsonschema.Schema
}

// operation is one method of one path of the document.
type operation struct {
	method, path string // "post", "/compat/upload/images"
	pattern      *regexp.Regexp
	node         map[string]any
}

// key names the operation as "post /compat/upload/images".
func (op operation) key() string { return op.method + " " + op.path }

// specURL is where the document is added to the schema compiler: its
// schemas' "#/components/..." references resolve within it.
const specURL = "https://imageservice.invalid/compat/openapi.json"

// loadSpec parses the document once for the whole test binary.
var loadSpec = sync.OnceValues(func() (*spec, error) {
	var root map[string]any
	if err := yaml.Unmarshal(compat.OpenAPI, &root); err != nil {
		return nil, fmt.Errorf("parse openapi.yaml: %w", err)
	}
	// The schema compiler wants the document as JSON values.
	raw, err := json.Marshal(root)
	if err != nil {
		return nil, fmt.Errorf("openapi.yaml as JSON: %w", err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("openapi.yaml as JSON: %w", err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft4) // OpenAPI 3.0's schemas are a subset of draft 4's (with "nullable")
	if err := c.AddResource(specURL, doc); err != nil {
		return nil, fmt.Errorf("add openapi.yaml to the schema compiler: %w", err)
	}
	s := &spec{root: root, compiler: c, compiled: map[string]*jsonschema.Schema{}}
	paths, _ := root["paths"].(map[string]any)
	for path, item := range paths {
		item, _ := item.(map[string]any)
		pattern := regexp.MustCompile("^" + regexp.MustCompile(`\\\{[^}]+\\\}`).ReplaceAllString(regexp.QuoteMeta(path), "[^/]+") + "$")
		for method, node := range item {
			if node, ok := node.(map[string]any); ok && method != "parameters" {
				s.ops = append(s.ops, operation{method: method, path: path, pattern: pattern, node: node})
			}
		}
	}
	slices.SortFunc(s.ops, func(a, b operation) int { return strings.Compare(a.key(), b.key()) })
	return s, nil
})

// match returns the operation that serves a request's method and path
// (the path as mounted on the main address), if the document has one.
func (s *spec) match(method, path string) (operation, bool) {
	method = strings.ToLower(method)
	for _, op := range s.ops {
		if op.method == method && op.pattern.MatchString(path) {
			return op, true
		}
	}
	return operation{}, false
}

// errorStatuses returns the 4xx and 5xx statuses the operation documents.
func (op operation) errorStatuses() []string {
	responses, _ := op.node["responses"].(map[string]any)
	var out []string
	for status := range responses {
		if status[0] == '4' || status[0] == '5' {
			out = append(out, status)
		}
	}
	slices.Sort(out)
	return out
}

// resolve follows the "$ref" of a node (and of what it points at) within
// the document, and returns the node reached and its JSON pointer.
func (s *spec) resolve(node any, ptr string) (map[string]any, string, error) {
	for range 10 {
		m, ok := node.(map[string]any)
		if !ok {
			return nil, ptr, fmt.Errorf("%s is not an object", ptr)
		}
		ref, ok := m["$ref"].(string)
		if !ok {
			return m, ptr, nil
		}
		if node, ok = s.lookup(ref); !ok {
			return nil, ptr, fmt.Errorf("%s: $ref %q does not resolve", ptr, ref)
		}
		ptr = ref
	}
	return nil, ptr, fmt.Errorf("%s: $ref chain too long", ptr)
}

// lookup returns the node at a local reference ("#/components/...").
func (s *spec) lookup(ref string) (any, bool) {
	p, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		return nil, false
	}
	var node any = s.root
	for _, tok := range strings.Split(p, "/") {
		m, ok := node.(map[string]any)
		if !ok {
			return nil, false
		}
		if node, ok = m[unescapePointer(tok)]; !ok {
			return nil, false
		}
	}
	return node, true
}

// pointer returns the JSON pointer of a child of ptr.
func pointer(ptr string, tokens ...string) string {
	for _, tok := range tokens {
		ptr += "/" + strings.ReplaceAll(strings.ReplaceAll(tok, "~", "~0"), "/", "~1")
	}
	return ptr
}

func unescapePointer(tok string) string {
	return strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
}

// schema compiles the schema at a JSON pointer of the document.
func (s *spec) schema(ptr string) (*jsonschema.Schema, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sch, ok := s.compiled[ptr]; ok {
		return sch, nil
	}
	sch, err := s.compiler.Compile(specURL + ptr)
	if err != nil {
		return nil, fmt.Errorf("compile the schema at %s: %w", ptr, err)
	}
	s.compiled[ptr] = sch
	return sch, nil
}

// errorHeaders are the headers an error response may carry that a
// client acts on: each one sent must be documented on the response.
var errorHeaders = []string{"Retry-After", "WWW-Authenticate", "Allow"}

// checkError reports how an error answer of an operation departs from
// the document: a status it does not list, a body its schema refuses, an
// error code its description does not name (as `CODE`), a header it
// declares required that is missing, or one of errorHeaders that it does
// not declare. It returns the answer's error code.
func (s *spec) checkError(op operation, status int, header http.Header, body []byte) (string, error) {
	var e apiError
	_ = json.Unmarshal(body, &e)
	responses, _ := op.node["responses"].(map[string]any)
	st := strconv.Itoa(status)
	node, ok := responses[st]
	if !ok {
		return e.Error.Code, fmt.Errorf("%s answered %d, which the document does not list (it lists %v)", op.key(), status, op.errorStatuses())
	}
	resp, ptr, err := s.resolve(node, pointer("#/paths", op.path, op.method, "responses", st))
	if err != nil {
		return e.Error.Code, err
	}
	var problems []string
	headers, _ := resp["headers"].(map[string]any)
	for name, h := range headers {
		h, _, err := s.resolve(h, pointer(ptr, "headers", name))
		if err != nil {
			return e.Error.Code, err
		}
		if h["required"] == true && header.Get(name) == "" {
			problems = append(problems, "no "+name+" header, which the document requires")
		}
	}
	for _, name := range errorHeaders {
		if header.Get(name) != "" && !slices.ContainsFunc(slices.Collect(maps.Keys(headers)), func(k string) bool { return strings.EqualFold(k, name) }) {
			problems = append(problems, "a "+name+" header, which the document does not declare")
		}
	}
	if _, ok := resp["content"].(map[string]any)["application/json"]; !ok {
		return e.Error.Code, fmt.Errorf("%s %d (%s) documents no application/json body", op.key(), status, ptr)
	}
	sch, err := s.schema(pointer(ptr, "content", "application/json", "schema"))
	if err != nil {
		return e.Error.Code, err
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		problems = append(problems, fmt.Sprintf("a body that is not JSON (%v)", err))
	} else if err := sch.Validate(v); err != nil {
		problems = append(problems, fmt.Sprintf("a body the documented schema refuses: %v", err))
	}
	if desc, _ := resp["description"].(string); e.Error.Code != "" && !strings.Contains(desc, "`"+e.Error.Code+"`") {
		problems = append(problems, fmt.Sprintf("code %s, which the response's description (%s) does not name", e.Error.Code, ptr))
	}
	if len(problems) > 0 {
		return e.Error.Code, fmt.Errorf("%s answered %d with %s: %s", op.key(), status, strings.Join(problems, "; "), body)
	}
	return e.Error.Code, nil
}
