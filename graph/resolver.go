// Package graph is the GraphQL API: the schema's resolvers, which turn
// input into commands and queries into read-model lookups, and the HTTP
// handler with its transports.
package graph

//go:generate go run github.com/99designs/gqlgen generate

// Resolver is the root resolver; it holds the service's dependencies.
type Resolver struct{}
