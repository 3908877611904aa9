package graph

import (
	"context"
	"strings"
	"testing"

	"github.com/99designs/gqlgen/graphql/handler/lru"
)

// The query caches keep short queries and leave out long ones.
func TestBoundedCache(t *testing.T) {
	ctx := context.Background()
	c := boundedCache[string]{lru.New[string](10), func(_, query string) int { return len(query) }}
	short, long := "{ images { edges { cursor } } }", "{ __typename }\n#"+strings.Repeat("x", maxCachedQuery)
	c.Add(ctx, "a", short)
	c.Add(ctx, "b", long)
	if got, ok := c.Get(ctx, "a"); !ok || got != short {
		t.Errorf("the short query was not kept: %q, %t", got, ok)
	}
	if _, ok := c.Get(ctx, "b"); ok {
		t.Error("a query longer than maxCachedQuery was kept")
	}
}
