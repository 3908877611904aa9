package graph

import (
	"context"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"

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

// Subscribers told of one outcome share one replay of it.
func TestOutcomesAreSharedBySubscribers(t *testing.T) {
	var c outcomeCache
	id := uuid.New()
	var loads atomic.Int64
	release := make(chan struct{})
	load := func() (decided, error) {
		loads.Add(1)
		<-release
		return decided{owner: "key:a"}, nil
	}
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			if o, err := c.get(context.Background(), id, load); err != nil || o.owner != "key:a" {
				t.Errorf("get = %+v, %v", o, err)
			}
		})
	}
	for loads.Load() == 0 {
		runtime.Gosched()
	}
	close(release)
	wg.Wait()
	if _, err := c.get(context.Background(), id, load); err != nil { // a late subscriber
		t.Fatal(err)
	}
	if n := loads.Load(); n != 1 {
		t.Errorf("the outcome was replayed %d times, want once", n)
	}
	for range keptOutcomes {
		_, _ = c.get(context.Background(), uuid.New(), func() (decided, error) { return decided{}, nil })
	}
	if _, ok := c.recent.Get(context.Background(), id.String()); ok {
		t.Errorf("the oldest outcome is still kept after %d newer ones", keptOutcomes)
	}
}
