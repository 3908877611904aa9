package thumbs

import (
	"container/list"
	"sync"
)

// lru is a small, concurrency-safe least-recently-used map from a source
// (original key and width) to the key of its thumbnail blob.
type lru struct {
	mu    sync.Mutex
	size  int
	order *list.List // of *entry, most recently used first
	items map[source]*list.Element
}

// source names one thumbnail: an original blob and a width.
type source struct {
	key   string
	width int
}

type entry struct {
	src   source
	thumb string
}

func newLRU(size int) *lru {
	return &lru{size: max(size, 1), order: list.New(), items: make(map[source]*list.Element)}
}

// get returns the thumbnail key of src, if known, and marks it used.
func (c *lru) get(src source) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[src]
	if !ok {
		return "", false
	}
	c.order.MoveToFront(el)
	return el.Value.(*entry).thumb, true
}

// add records the thumbnail key of src, evicting the least recently used
// entry when full.
func (c *lru) add(src source, thumb string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[src]; ok {
		el.Value.(*entry).thumb = thumb
		c.order.MoveToFront(el)
		return
	}
	c.items[src] = c.order.PushFront(&entry{src: src, thumb: thumb})
	if c.order.Len() > c.size {
		oldest := c.order.Back()
		c.order.Remove(oldest)
		delete(c.items, oldest.Value.(*entry).src)
	}
}

// remove forgets src.
func (c *lru) remove(src source) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[src]; ok {
		c.order.Remove(el)
		delete(c.items, src)
	}
}
