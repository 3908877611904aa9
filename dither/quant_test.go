package dither

import "testing"

// TestLevelQuantTables checks the table lookups against a plain search
// for every working value, so one fix-up comparison is always enough.
func TestLevelQuantTables(t *testing.T) {
	for _, cs := range []ColorSpace{Linear, SRGB} {
		for _, n := range []int{2, 3, 7, 16, 255, 256} {
			q := newLevelQuant(n, spaceFor(cs))
			for v := int32(0); v <= workMax; v++ {
				if got, want := q.nearest(v), q.slowNearest(v); got != want {
					t.Fatalf("%v n=%d nearest(%d) = %d, want %d", cs, n, v, got, want)
				}
				f := 0
				for q.lv[f+1] <= v {
					f++
				}
				if got := q.threshold(v, 65535); got != f {
					t.Fatalf("%v n=%d floor(%d) = %d, want %d", cs, n, v, got, f)
				}
			}
		}
	}
}
