package dither

import (
	"image"
	"sync"
	"testing"
)

var (
	benchOnce sync.Once
	benchImg  *image.RGBA

	bench16Once sync.Once
	bench16Img  *image.NRGBA64
)

// benchImage returns a 12 MP photo-like RGBA image, made once.
func benchImage() *image.RGBA {
	benchOnce.Do(func() {
		n := testImage(4000, 3000, 1)
		benchImg = &image.RGBA{Pix: n.Pix, Stride: n.Stride, Rect: n.Rect}
	})
	return benchImg
}

// benchImage16 returns benchImage at 16 bits a channel: each 8-bit value
// v becomes v*256 plus a pseudo-random low byte, so that the tables of
// the 16-bit path are read all over, as with a real 16-bit photo.
func benchImage16() *image.NRGBA64 {
	bench16Once.Do(func() { bench16Img = widen(benchImage()) })
	return bench16Img
}

// widen returns m as an *image.NRGBA64 whose values have m's as their
// top byte and noise as their low byte (alpha stays opaque).
func widen(m *image.RGBA) *image.NRGBA64 {
	w := image.NewNRGBA64(m.Rect)
	for i, v := range m.Pix {
		w.Pix[2*i], w.Pix[2*i+1] = v, uint8(mix(5, uint64(i)))
		if i%4 == 3 {
			w.Pix[2*i+1] = 0xff
		}
	}
	return w
}

func benchDither(b *testing.B, o Options) { benchDitherImage(b, benchImage(), o) }

func benchDither16(b *testing.B, o Options) { benchDitherImage(b, benchImage16(), o) }

func benchDitherImage(b *testing.B, img image.Image, o Options) {
	b.ResetTimer()
	for b.Loop() {
		if _, err := Dither(img, o); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(4000*3000)*float64(b.N)/b.Elapsed().Seconds()/1e6, "MPix/s")
}

func BenchmarkFloydSteinbergSRGB(b *testing.B) {
	benchDither(b, Options{ColorSpace: SRGB})
}

func BenchmarkFloydSteinbergLinear(b *testing.B) { benchDither(b, Options{}) }

func BenchmarkBayer8x8(b *testing.B) { benchDither(b, Options{Algorithm: Bayer8x8}) }

func BenchmarkJarvisJudiceNinke(b *testing.B) {
	benchDither(b, Options{Algorithm: JarvisJudiceNinke})
}

func BenchmarkPaletteCGA(b *testing.B) { benchDither(b, Options{Palette: "cga"}) }

// The same benchmarks on the same picture at 16 bits.

func BenchmarkFloydSteinbergLinear16(b *testing.B) { benchDither16(b, Options{}) }

func BenchmarkBayer8x8_16(b *testing.B) { benchDither16(b, Options{Algorithm: Bayer8x8}) }

func BenchmarkPaletteCGA16(b *testing.B) { benchDither16(b, Options{Palette: "cga"}) }

// The transparency decision for the 16-bit photo: BenchmarkScanAlpha16 is
// the scan Dither did before dithering a 16-bit image (its Opaque method,
// a pass over the whole image in memory), BenchmarkCheckAlpha16 the check
// of the guess of opaque that replaced it: each row tested right after it
// was loaded for dithering, while it is in the cache (here: each row
// loaded, then tested; the loading is BenchmarkLoadRows16).

func BenchmarkScanAlpha16(b *testing.B) {
	img := benchImage16()
	b.ResetTimer()
	for b.Loop() {
		if scanAlpha(img) != alphaOpaque {
			b.Fatal("not opaque")
		}
	}
}

func BenchmarkCheckAlpha16(b *testing.B) { benchLoadRows16(b, true) }

func BenchmarkLoadRows16(b *testing.B) { benchLoadRows16(b, false) }

func benchLoadRows16(b *testing.B, check bool) {
	img := benchImage16()
	load, buf := newRowLoader16(img), make([]uint16, 4*img.Rect.Dx())
	b.ResetTimer()
	for b.Loop() {
		for y := range img.Rect.Dy() {
			if row := load(y, buf); check && !rgba64Opaque(row) {
				b.Fatal("not opaque")
			}
		}
	}
}
