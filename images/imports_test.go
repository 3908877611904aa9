package images_test

import (
	"go/parser"
	"go/token"
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestImportsStayPure keeps the domain free of I/O dependencies: the standard
// library, github.com/google/uuid and the JSON v2 codec
// (github.com/go-json-experiment/json) only, nothing else of the project.
func TestImportsStayPure(t *testing.T) {
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			first, _, _ := strings.Cut(path, "/")
			if !allowedImport(path) && strings.Contains(first, ".") {
				t.Errorf("%s imports %s", name, path)
			}
		}
	}
}

func allowedImport(path string) bool {
	return path == "github.com/google/uuid" || path == "github.com/go-json-experiment/json" ||
		strings.HasPrefix(path, "github.com/go-json-experiment/json/")
}
