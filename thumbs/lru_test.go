package thumbs

import "testing"

func TestLRUEvictsTheLeastRecentlyUsed(t *testing.T) {
	c := newLRU(2)
	a, b, d := source{"a", 160}, source{"b", 160}, source{"a", 320}
	c.add(a, "ta")
	c.add(b, "tb")
	if got, ok := c.get(a); !ok || got != "ta" {
		t.Fatalf("get a: %q %v", got, ok)
	}
	c.add(d, "td") // b is the least recently used
	if _, ok := c.get(b); ok {
		t.Error("b was not evicted")
	}
	for src, want := range map[source]string{a: "ta", d: "td"} {
		if got, ok := c.get(src); !ok || got != want {
			t.Errorf("get %v: %q %v, want %q", src, got, ok, want)
		}
	}
	c.add(a, "ta2")
	c.remove(d)
	if got, _ := c.get(a); got != "ta2" {
		t.Errorf("a updated to %q", got)
	}
	if _, ok := c.get(d); ok {
		t.Error("d was not removed")
	}
}
