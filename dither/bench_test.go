package dither

import (
	"image"
	"sync"
	"testing"
)

var (
	benchOnce sync.Once
	benchImg  *image.RGBA
)

// benchImage returns a 12 MP photo-like RGBA image, made once.
func benchImage() *image.RGBA {
	benchOnce.Do(func() {
		n := testImage(4000, 3000, 1)
		benchImg = &image.RGBA{Pix: n.Pix, Stride: n.Stride, Rect: n.Rect}
	})
	return benchImg
}

func benchDither(b *testing.B, o Options) {
	img := benchImage()
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
