package dither

import (
	"fmt"
	"image"
	"image/color"
	"math"
	"testing"
)

// Tests of 16-bit sources: they are dithered at 16 bits, not truncated.

func TestToWork16(t *testing.T) {
	for _, cs := range []ColorSpace{Linear, SRGB} {
		sp := spaceFor(cs)
		t16 := sp.toWork16()
		for v := range 256 {
			if t16[v*257] != sp.toWork[v] {
				t.Fatalf("%v: toWork16[%d*257] = %d, toWork[%d] = %d", cs, v, t16[v*257], v, sp.toWork[v])
			}
		}
		for v := 1; v < len(t16); v++ {
			if t16[v] < t16[v-1] {
				t.Fatalf("%v: toWork16 falls at %d", cs, v)
			}
		}
		if t16[0] != 0 || t16[65535] != workMax {
			t.Errorf("%v: toWork16 spans %d..%d, want 0..%d", cs, t16[0], t16[65535], workMax)
		}
	}
}

// light returns the 16-bit sRGB value v as a fraction of full scale, in
// linear light when linear is set (the sRGB curve, written out here).
func light(v float64, linear bool) float64 {
	s := v / 65535
	if !linear {
		return s
	}
	if s <= 0.04045 {
		return s / 12.92
	}
	return math.Pow((s+0.055)/1.055, 2.4)
}

// gapTo8Bit returns the distance in light from the 16-bit value v to the
// nearest 8-bit value (u*257).
func gapTo8Bit(v uint16, linear bool) float64 {
	gap := math.Inf(1)
	for u := range 256 {
		gap = min(gap, math.Abs(light(float64(v), linear)-light(float64(u*257), linear)))
	}
	return gap
}

// edgeLoss bounds how far the mean of a w x h image dithered to two
// levels with kernel k (left to right, full strength) can be from the mean
// of the source: every pixel's error is at most half a level, and only
// the share of it that the kernel sends past the image's edges is lost.
// One working unit covers the engine's rounding.
func edgeLoss(k kernel, w, h int) float64 {
	var lost float64
	for _, t := range k.taps {
		inside := max(w-abs(t.dx), 0) * max(h-t.dy, 0) // pixels whose tap lands inside
		lost += float64(t.w) / float64(k.divisor) * float64(w*h-inside)
	}
	return 0.5*lost/float64(w*h) + 1.0/workMax
}

func abs(v int) int { return max(v, -v) }

// flatSide returns the side of the smallest square (a multiple of 64)
// whose edgeLoss with k is below tol.
func flatSide(t *testing.T, k kernel, tol float64) int {
	for n := 64; n <= 4096; n += 64 {
		if edgeLoss(k, n, n) < tol {
			return n
		}
	}
	t.Fatalf("no square up to 4096 pixels keeps the error within %g", tol)
	return 0
}

// flat16 returns an n x n image of the 16-bit grey v: an *image.Gray16, or
// an *image.NRGBA64 with alpha from alpha(x, y).
func flat16(n int, v uint16, gray bool, alpha func(x, y int) uint16) image.Image {
	r := image.Rect(0, 0, n, n)
	if gray {
		m := image.NewGray16(r)
		for i := range m.Pix {
			m.Pix[i] = uint8(v >> (8 - 8*(i%2)))
		}
		return m
	}
	m := image.NewNRGBA64(r)
	for y := range n {
		for x := range n {
			a, p := alpha(x, y), m.Pix[m.PixOffset(x, y):]
			p[0], p[1], p[2], p[3], p[4], p[5] = uint8(v>>8), uint8(v), uint8(v>>8), uint8(v), uint8(v>>8), uint8(v)
			p[6], p[7] = uint8(a>>8), uint8(a)
		}
	}
	return m
}

func opaque16(int, int) uint16 { return 0xffff }

// onFraction returns the fraction of the pixels of a result (paletted or
// NRGBA) whose red is full.
func onFraction(t *testing.T, img image.Image) float64 {
	on := 0
	switch m := img.(type) {
	case *image.Paletted:
		var full [256]bool
		for i, c := range m.Palette {
			full[i] = color.NRGBAModel.Convert(c).(color.NRGBA).R == 255
		}
		for _, i := range m.Pix {
			if full[i] {
				on++
			}
		}
	case *image.NRGBA:
		for i := 0; i < len(m.Pix); i += 4 {
			if m.Pix[i] == 255 {
				on++
			}
		}
	default:
		t.Fatalf("result is %T", img)
	}
	return float64(on) / float64(img.Bounds().Dx()*img.Bounds().Dy())
}

// TestFlat16BitMean dithers a flat 16-bit grey between two 8-bit values
// to two levels: the fraction of white pixels, in the options' light
// space, must be the 16-bit value's, within half its distance to the
// nearest 8-bit value, which a truncating engine cannot meet. The image
// is made large enough that the error lost at its edges (edgeLoss) stays
// within that.
func TestFlat16BitMean(t *testing.T) {
	const v = 0x80ff
	partial := func(x, y int) uint16 { return uint16(0x0100 + (x*131+y*977)%0xff00) }
	cases := []struct {
		name  string
		gray  bool
		alpha func(x, y int) uint16
		opts  Options
	}{
		{"Gray16", true, nil, Options{}},
		{"NRGBA64", false, opaque16, Options{ColorSpace: SRGB}},
		{"NRGBA64 grayscale", false, opaque16, Options{Grayscale: true}},
		{"NRGBA64 partial alpha", false, partial, Options{}},
		{"Gray16", true, nil, Options{Algorithm: SierraLite, ColorSpace: SRGB}},
	}
	for _, c := range cases {
		name := fmt.Sprintf("%s %v %v", c.name, c.opts.Algorithm, c.opts.ColorSpace)
		linear := c.opts.ColorSpace == Linear
		want := light(v, linear)
		tol := gapTo8Bit(v, linear) / 2
		n := flatSide(t, kernels[c.opts.Algorithm], tol)
		got := onFraction(t, mustDither(t, flat16(n, v, c.gray, c.alpha), c.opts))
		if math.Abs(got-want) > tol {
			t.Errorf("%s, %dx%d: %.5f on, want %.5f within %.5f (the 8-bit 0x%02x gives %.5f)",
				name, n, n, got, want, tol, v>>8, light(v>>8*257, linear))
		}
	}
}

// TestGradient16 posterises (None, two levels) a 16-bit ramp across the
// middle of linear light: a pixel is white exactly when its value is
// above the middle, to within one 16-bit step; at 8 bits the edge would
// move to the next 8-bit value, 0xbc00, 64 steps away.
func TestGradient16(t *testing.T) {
	const from, w, h = 0xbb00, 768, 3
	mid := from
	for light(float64(mid), true) <= 0.5 {
		mid++
	}
	m := image.NewGray16(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			m.SetGray16(x, y, color.Gray16{uint16(from + x)})
		}
	}
	out := mustDither(t, m, Options{Algorithm: None})
	for y := range h {
		for x := range w {
			v := from + x
			r, _, _, _ := out.At(x, y).RGBA()
			if (v < mid-1 && r != 0) || (v > mid && r != 0xffff) {
				t.Fatalf("value 0x%04x gave red 0x%04x; the middle is at 0x%04x", v, r, mid)
			}
		}
	}
}

// TestWideAlpha checks today's alpha rules on a 16-bit source: alpha
// counts by its top byte (below 0x0100 is fully transparent, and the
// result keeps the top byte), and partial alpha changes no colour. A
// premultiplied source dithers as Go's NRGBA64 conversion of it.
func TestWideAlpha(t *testing.T) {
	img := testImage16(41, 29, 31)
	alphas := []uint16{0x0000, 0x00ff, 0x0100, 0x7fff, 0xff00, 0xfffe, 0xffff}
	binary := image.NewNRGBA64(img.Bounds())
	for i := range img.Pix {
		binary.Pix[i] = img.Pix[i]
	}
	for y := range 29 {
		for x := range 41 {
			a := alphas[(x+3*y)%len(alphas)]
			c := img.NRGBA64At(x, y)
			c.A = a
			img.SetNRGBA64(x, y, c)
			if a>>8 != 0 {
				a = 0xffff
			}
			c.A = a
			binary.SetNRGBA64(x, y, c)
		}
	}
	for _, o := range []Options{{}, {Algorithm: Stucki, Levels: 3}, {Algorithm: Bayer4x4}, {Palette: "cga"}} {
		out, ok := mustDither(t, img, o).(*image.NRGBA)
		if !ok {
			t.Fatalf("%+v: partial alpha gave %T, want *image.NRGBA", o, out)
		}
		bin, ok := mustDither(t, binary, o).(*image.Paletted)
		if !ok {
			t.Fatalf("%+v: binary alpha gave %T, want *image.Paletted", o, bin)
		}
		for y := range 29 {
			for x := range 41 {
				a8 := uint8(img.NRGBA64At(x, y).A >> 8)
				got, want := out.NRGBAAt(x, y), color.NRGBAModel.Convert(bin.At(x, y)).(color.NRGBA)
				if want.A != 0 {
					want.A = a8
				}
				if got != want || got.A != a8 {
					t.Fatalf("%+v: pixel (%d,%d) of alpha 0x%04x is %v, want %v", o, x, y, img.NRGBA64At(x, y).A, got, want)
				}
			}
		}
	}
	premul := convert(img, image.NewRGBA64)
	for _, o := range []Options{{}, {Algorithm: Sierra, Levels: 5}} {
		want := mustDither(t, convert(premul, image.NewNRGBA64), o)
		for name, src := range wideSources(premul) {
			if !sameImage(mustDither(t, src, o), want) {
				t.Errorf("RGBA64 with alpha as %s %+v: differs from its NRGBA64 conversion", name, o)
			}
		}
	}
}

// TestWideAlphaGuess checks the guess-and-check of transparency on 16-bit
// sources: an NRGBA64 or RGBA64 is taken to be opaque without a scan, a
// transparent pixel in its last row makes the check fail and the engine
// start again, and the result is the one dithering with the scanned
// alphaKind gives. Alpha whose top byte is 0xff (0xff00 to 0xfffe) is
// opaque at 8 bits and passes the check.
func TestWideAlphaGuess(t *testing.T) {
	const w, h = 300, 240 // over minWideLUTPixels: ordered dithering takes the table path
	lastRow := testImage16(w, h, 41)
	lastRow.SetNRGBA64(w-2, h-1, color.NRGBA64{0x1234, 0x5678, 0x9abc, 0})
	partialLast := testImage16(w, h, 42)
	partialLast.SetNRGBA64(w/2, h-1, color.NRGBA64{0x1234, 0x5678, 0x9abc, 0x8000})
	nearlyOpaque := testImage16(w, h, 43)
	for x := range w {
		c := nearlyOpaque.NRGBA64At(x, x%h)
		c.A = 0xff00 + uint16(x%256)
		nearlyOpaque.SetNRGBA64(x, x%h, c)
	}
	srcs := []struct {
		name   string
		img    image.Image
		opaque bool // at 8 bits: the guess holds
	}{
		{"NRGBA64 transparent in the last row", lastRow, false},
		{"RGBA64 transparent in the last row", convert(lastRow, image.NewRGBA64), false},
		{"NRGBA64 partly transparent in the last row", partialLast, false},
		{"NRGBA64 alpha 0xff00 and up", nearlyOpaque, true},
		{"RGBA64 alpha 0xff00 and up", convert(nearlyOpaque, image.NewRGBA64), true},
	}
	opts := []Options{{}, {Levels: 5, Serpentine: true}, {Palette: "cga"}, {Algorithm: Bayer8x8}, {Algorithm: Random, Levels: 3}}
	for _, s := range srcs {
		kind, sure := guessAlpha(s.img)
		if sure || kind != alphaOpaque {
			t.Fatalf("%s: guessAlpha = %v, %v; want a guess of opaque, without a scan", s.name, kind, sure)
		}
		for _, o := range opts {
			if got := newEngine(s.img, o, kind, true).run(); got != s.opaque {
				t.Errorf("%s %+v: the guess of opaque checked %v, want %v", s.name, o, got, s.opaque)
			}
			want := newEngine(s.img, o, scanAlpha(s.img), false)
			want.run()
			if !sameImage(mustDither(t, s.img, o), want.out.img) {
				t.Errorf("%s %+v: differs from dithering with the scanned alpha", s.name, o)
			}
		}
	}
}
