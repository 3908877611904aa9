package dither

import (
	"image"
	"image/color"
	"math"
	"testing"
)

// testImage returns a deterministic photo-like NRGBA image: smooth
// gradients plus pseudo-random noise.
func testImage(w, h int, seed uint64) *image.NRGBA {
	m := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			n := mix(seed, uint64(y)<<32|uint64(x))
			fx, fy := float64(x)/float64(max(w, 1)), float64(y)/float64(max(h, 1))
			r := 255*fx + float64(n&31) - 16
			g := 255*fy + float64(n>>8&31) - 16
			b := 128 + 100*math.Sin(6*fx+4*fy) + float64(n>>16&31) - 16
			m.SetNRGBA(x, y, color.NRGBA{clamp8(r), clamp8(g), clamp8(b), 255})
		}
	}
	return m
}

func clamp8(v float64) uint8 { return uint8(min(max(math.Round(v), 0), 255)) }

// testImage16 is testImage at 16 bits a channel: the same picture plus
// noise in the low byte, so that most values lie between 8-bit ones.
func testImage16(w, h int, seed uint64) *image.NRGBA64 {
	m := image.NewNRGBA64(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			n := mix(seed, uint64(y)<<32|uint64(x))
			fx, fy := float64(x)/float64(max(w, 1)), float64(y)/float64(max(h, 1))
			r := 65535*fx + float64(n&0x1fff) - 0x1000
			g := 65535*fy + float64(n>>16&0x1fff) - 0x1000
			b := 32768 + 25000*math.Sin(6*fx+4*fy) + float64(n>>32&0x1fff) - 0x1000
			m.SetNRGBA64(x, y, color.NRGBA64{clamp16f(r), clamp16f(g), clamp16f(b), 0xffff})
		}
	}
	return m
}

func clamp16f(v float64) uint16 { return uint16(min(max(math.Round(v), 0), 65535)) }

// rgbOf returns the straight red, green and blue of img's pixel (x, y),
// 0..65535 (an 8-bit value v reads as v*257).
func rgbOf(img image.Image, x, y int) [3]float64 {
	c := color.NRGBA64Model.Convert(img.At(x, y)).(color.NRGBA64)
	return [3]float64{float64(c.R), float64(c.G), float64(c.B)}
}

// refDiffusion is a plain float reference of error diffusion in sRGB: it
// walks img as the engine does, dithering with alg to n levels, and
// returns the first pixel (row-major index) whose levels in got are not
// the reference's, or -1. A value within tie (16-bit units) of the middle
// between two levels may take either; the error then spreads from got's
// level, so that such a tie does not change every later pixel. With tie 0
// the reference decides every pixel alone.
func refDiffusion(img image.Image, got [][3]int, n int, alg Algorithm, serpentine bool, tie float64) int {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	errs := make([][3]float64, w*h)
	step := 65535 / float64(n-1)
	k := kernels[alg]
	for y := 0; y < h; y++ {
		dir := 1
		if serpentine && y%2 == 1 {
			dir = -1
		}
		for i := 0; i < w; i++ {
			x := i
			if dir < 0 {
				x = w - 1 - i
			}
			for ch, v16 := range rgbOf(img, b.Min.X+x, b.Min.Y+y) {
				v := v16 + errs[y*w+x][ch]
				lvl := got[y*w+x][ch]
				if !nearestLevel(v/step, lvl, n, tie/step) {
					return y*w + x
				}
				e := v - float64(lvl)*step
				for _, t := range k.taps {
					xx, yy := x+t.dx*dir, y+t.dy
					if xx >= 0 && xx < w && yy < h {
						errs[yy*w+xx][ch] += e * float64(t.w) / float64(k.divisor)
					}
				}
			}
		}
	}
	return -1
}

// nearestLevel reports whether lvl (0..n-1) is the level nearest to v (in
// levels; ties go up), or the level on the other side of a middle within
// tie of v.
func nearestLevel(v float64, lvl, n int, tie float64) bool {
	want := int(min(max(math.Floor(v+0.5), 0), float64(n-1)))
	if lvl == want {
		return true
	}
	mid := float64(min(lvl, want)) + 0.5
	return tie > 0 && (lvl == want-1 || lvl == want+1) && math.Abs(v-mid) <= tie
}

// refThreshold is the float reference of ordered dithering in sRGB, and
// of random thresholds from seed, checked against got as refDiffusion
// does: a value within tie of a threshold may take either level.
func refThreshold(img image.Image, got [][3]int, n int, alg Algorithm, seed uint64, tie float64) int {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	ranks, side := thresholdMatrix(alg)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			t := (2*float64(ranks[(y%side)*side+x%side]) + 1) / (2 * float64(side*side))
			switch alg {
			case None:
				t = 0.5
			case Random:
				t = float64(mix(seed, uint64(y)<<32|uint64(x))>>48) / 65536
			}
			for ch, v16 := range rgbOf(img, b.Min.X+x, b.Min.Y+y) {
				v := v16 / 65535 * float64(n-1)
				lo := math.Floor(v)
				want := int(lo)
				if v-lo > t {
					want++
				}
				lvl := got[y*w+x][ch]
				near := tie > 0 && math.Abs(v-lo-t) <= tie/65535*float64(n-1)
				if lvl != want && !(near && (lvl == int(lo) || lvl == int(lo)+1)) {
					return y*w + x
				}
			}
		}
	}
	return -1
}

// levelsOf decodes a dithered 3-channel result back to per-channel levels.
func levelsOf(t *testing.T, img image.Image, n int) [][3]int {
	t.Helper()
	b := img.Bounds()
	out := make([][3]int, 0, b.Dx()*b.Dy())
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			c := color.NRGBAModel.Convert(img.At(x, y)).(color.NRGBA)
			var l [3]int
			for ch, v := range []uint8{c.R, c.G, c.B} {
				l[ch] = int(math.Round(float64(v) * float64(n-1) / 255))
			}
			out = append(out, l)
		}
	}
	return out
}

func TestMatchesFloatReference(t *testing.T) {
	testMatchesReference(t, func(w, h int, seed uint64) image.Image { return testImage(w, h, seed) }, 0)
}

// TestMatchesFloatReference16 is TestMatchesFloatReference on 16-bit
// images whose values mostly lie between 8-bit ones: every algorithm
// must dither them at 16 bits. The engine's fixed point (1/16 of a 16-bit
// step for diffused error, 1/65536 of a level for thresholds) may decide
// a value less than a 16-bit step from a boundary either way.
func TestMatchesFloatReference16(t *testing.T) {
	testMatchesReference(t, func(w, h int, seed uint64) image.Image { return testImage16(w, h, seed) }, 1)
}

// testMatchesReference compares the engine with the float references on
// images made by newImage, in sRGB, for every algorithm, with ties within
// tie (16-bit units) of a decision taken either way.
func testMatchesReference(t *testing.T, newImage func(w, h int, seed uint64) image.Image, tie float64) {
	sizes := [][2]int{{23, 17}, {1, 9}, {9, 1}, {64, 5}}
	for _, alg := range Algorithms() {
		for _, n := range []int{2, 4, 6, 7} {
			for _, serp := range []bool{false, true} {
				if serp && !alg.IsErrorDiffusion() || alg == BlueNoise && n != 2 {
					continue
				}
				for si, sz := range sizes {
					img := newImage(sz[0], sz[1], uint64(si+n))
					const seed = 77
					out := mustDither(t, img, Options{Algorithm: alg, Levels: n, Serpentine: serp, ColorSpace: SRGB, Seed: seed})
					got := levelsOf(t, out, n)
					var bad int
					if alg.IsErrorDiffusion() {
						bad = refDiffusion(img, got, n, alg, serp, tie)
					} else {
						bad = refThreshold(img, got, n, alg, seed, tie)
					}
					if bad >= 0 {
						t.Errorf("%v levels %d serpentine %v size %v: first difference at pixel %d", alg, n, serp, sz, bad)
					}
				}
			}
		}
	}
}
