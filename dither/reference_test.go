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

// refLevels is a plain float reference: it returns, for every pixel and
// channel, the chosen level of img dithered in sRGB with alg to n levels.
func refLevels(img *image.NRGBA, n int, alg Algorithm, serpentine bool) [][3]int {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	out := make([][3]int, w*h)
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
			c := img.NRGBAAt(x, y)
			for ch, v8 := range []uint8{c.R, c.G, c.B} {
				v := float64(v8)*257 + errs[y*w+x][ch]
				lvl := min(max(math.Floor(v/step+0.5), 0), float64(n-1))
				out[y*w+x][ch] = int(lvl)
				if !alg.IsErrorDiffusion() {
					continue
				}
				e := v - lvl*step
				for _, t := range k.taps {
					xx, yy := x+t.dx*dir, y+t.dy
					if xx >= 0 && xx < w && yy < h {
						errs[yy*w+xx][ch] += e * float64(t.w) / float64(k.divisor)
					}
				}
			}
		}
	}
	return out
}

// refOrdered is the float reference of ordered dithering in sRGB.
func refOrdered(img *image.NRGBA, n int, alg Algorithm) [][3]int {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	ranks, side := thresholdMatrix(alg)
	out := make([][3]int, w*h)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			t := (2*float64(ranks[(y%side)*side+x%side]) + 1) / (2 * float64(side*side))
			if alg == None {
				t = 0.5
			}
			c := img.NRGBAAt(x, y)
			for ch, v8 := range []uint8{c.R, c.G, c.B} {
				v := float64(v8) / 255 * float64(n-1)
				lo := math.Floor(v)
				lvl := int(lo)
				if v-lo > t {
					lvl++
				}
				out[y*w+x][ch] = lvl
			}
		}
	}
	return out
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
	sizes := [][2]int{{23, 17}, {1, 9}, {9, 1}, {64, 5}}
	for _, alg := range Algorithms() {
		for _, n := range []int{2, 4, 6, 7} {
			for _, serp := range []bool{false, true} {
				if serp && !alg.IsErrorDiffusion() || alg == Random || alg == BlueNoise && n != 2 {
					continue
				}
				for si, sz := range sizes {
					img := testImage(sz[0], sz[1], uint64(si+n))
					got, err := Dither(img, Options{Algorithm: alg, Levels: n, Serpentine: serp, ColorSpace: SRGB})
					if err != nil {
						t.Fatal(err)
					}
					var want [][3]int
					if alg.IsErrorDiffusion() {
						want = refLevels(img, n, alg, serp)
					} else {
						want = refOrdered(img, n, alg)
					}
					if diff := firstDiff(levelsOf(t, got, n), want); diff >= 0 {
						t.Errorf("%v levels %d serpentine %v size %v: first difference at pixel %d", alg, n, serp, sz, diff)
					}
				}
			}
		}
	}
}

func firstDiff(a, b [][3]int) int {
	for i := range a {
		if a[i] != b[i] {
			return i
		}
	}
	if len(a) != len(b) {
		return min(len(a), len(b))
	}
	return -1
}
