package compat

import (
	_ "embed"
	"net/http"
)

// OpenAPI is the OpenAPI 3 document that describes both services.
//
//go:embed openapi.yaml
var OpenAPI []byte

// OpenAPIHandler serves the OpenAPI document as YAML.
func OpenAPIHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/yaml")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		_, _ = w.Write(OpenAPI)
	})
}
