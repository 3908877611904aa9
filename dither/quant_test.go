package dither

import (
	"image/color"
	"math/rand/v2"
	"testing"
)

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

// TestPaletteNearestIsExact checks the palette lookup against a search of
// every colour, at random points and at every colour of the palette.
func TestPaletteNearestIsExact(t *testing.T) {
	greys := make(color.Palette, 256)
	for i := range greys {
		greys[i] = color.Gray{uint8(i)}
	}
	palettes := map[string]color.Palette{
		"near-black": {color.Black, color.NRGBA{6, 6, 6, 255}, color.White},
		"greys":      greys,
	}
	for _, name := range PaletteNames() {
		palettes[name], _ = NamedPalette(name)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	palettes["random"] = make(color.Palette, 256)
	for i := range palettes["random"] {
		palettes["random"][i] = color.NRGBA{uint8(rng.IntN(256)), uint8(rng.IntN(256)), uint8(rng.IntN(256)), 255}
	}
	for _, cs := range []ColorSpace{Linear, SRGB} {
		for name, p := range palettes {
			pq := newPaletteQuant(p, spaceFor(cs))
			check := func(v [3]int32) {
				if got, want := pq.nearest(v[0], v[1], v[2]), slowNearest(pq.work, v); got != want {
					t.Fatalf("%v %s: nearest(%v) = %d %v, want %d %v", cs, name, v, got, pq.colors[got], want, pq.colors[want])
				}
			}
			for _, c := range pq.work {
				check(c)
			}
			for range 20000 {
				check([3]int32{rng.Int32N(workMax + 1), rng.Int32N(workMax + 1), rng.Int32N(workMax + 1)})
			}
		}
	}
}

// slowNearest returns the index of the first colour of work nearest to v.
func slowNearest(work [][3]int32, v [3]int32) int {
	best := 0
	for i, c := range work {
		if dist2(v, c) < dist2(v, work[best]) {
			best = i
		}
	}
	return best
}
