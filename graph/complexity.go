package graph

import "github.com/imageservice/imageservice/projections"

// Default page sizes of the connections, as schema.graphql declares them.
const (
	defaultImagesPage  = 20
	defaultDithersPage = 20
	defaultHistoryPage = 50
)

// DefaultComplexityLimit is HandlerOptions.ComplexityLimit's default. A
// field costs 1, and a connection costs its page size times what one of
// its items costs, so the limit bounds how many values a query can make
// the service load: a page of 100 images with 100 dithers each (about
// 150,000 with a dither's fields) is accepted, while nesting a third
// connection of 100 under those (a million events) is refused.
const DefaultComplexityLimit = 200_000

// complexity weights each connection by its page size. Without it,
// gqlgen counts a list once however long it is, so a handful of fields
// nested three connections deep could load a million values under a
// limit of 1000.
func complexity() ComplexityRoot {
	var c ComplexityRoot
	c.Query.Images = pageCost(defaultImagesPage)
	c.Image.Dithers = pageCost(defaultDithersPage)
	c.Image.History = pageCost(defaultHistoryPage)
	return c
}

// pageCost is the complexity of a connection whose first argument
// defaults to def: one for the field and its page size times the
// complexity of its selection. A page size out of range counts as the
// nearest valid one; the resolver refuses it with its own error.
func pageCost(def int) func(child int, first *int, after *string) int {
	return func(child int, first *int, _ *string) int {
		n := def
		if first != nil {
			n = min(max(*first, 1), projections.MaxPageSize)
		}
		return 1 + n*child
	}
}
