package bridge

import "testing"

// TestFreeListKeepsUpToItsSize: values put back come out again, newest
// or not, up to keptFree of them; past that, get makes new ones.
func TestFreeListKeepsUpToItsSize(t *testing.T) {
	var f freeList[buffers]
	put := map[*buffers]bool{}
	for range keptFree + 2 {
		b := new(buffers)
		put[b] = true
		f.put(b)
	}
	reused := 0
	for range keptFree + 2 {
		if put[f.get()] {
			reused++
		}
	}
	if reused != keptFree {
		t.Fatalf("%d values reused, want %d", reused, keptFree)
	}
}
