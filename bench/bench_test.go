package bench

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/jpeg"
	"io"
	"math"
	"sync"
	"syscall"
	"testing"
	"time"

	mw "github.com/makeworld-the-better-one/dither/v2"

	"github.com/imageservice/imageservice/dither"
	"github.com/imageservice/imageservice/imagefile"
)

const width, height = 4000, 3000

var (
	photoOnce sync.Once
	photo     *image.RGBA

	photo16Once sync.Once
	photo16     *image.NRGBA64
)

// photoImage returns a deterministic 12 MP photo-like image: smooth
// gradients and waves plus noise. It is made once.
func photoImage() *image.RGBA {
	photoOnce.Do(func() {
		photo = image.NewRGBA(image.Rect(0, 0, width, height))
		var s uint32 = 1
		for y := 0; y < height; y++ {
			for x := 0; x < width; x++ {
				s = s*1664525 + 1013904223
				n := float64(s>>24) / 16
				fx, fy := float64(x)/width, float64(y)/height
				i := photo.PixOffset(x, y)
				photo.Pix[i] = clamp(255*fx + 30*math.Sin(9*fy) + n - 8)
				photo.Pix[i+1] = clamp(255*fy + 40*math.Cos(7*fx) + n - 8)
				photo.Pix[i+2] = clamp(128 + 100*math.Sin(5*fx+3*fy) + n - 8)
				photo.Pix[i+3] = 255
			}
		}
	})
	return photo
}

func clamp(v float64) uint8 { return uint8(min(max(v, 0), 255)) }

// photoImage16 returns photoImage at 16 bits a channel, made once: each
// 8-bit value v becomes v*256 plus a pseudo-random low byte (alpha stays
// opaque). The 8-bit photo is its top byte: the same picture.
func photoImage16() *image.NRGBA64 {
	photo16Once.Do(func() {
		src := photoImage()
		photo16 = image.NewNRGBA64(src.Rect)
		var s uint32 = 2
		for i, v := range src.Pix {
			s = s*1664525 + 1013904223
			low := uint8(s >> 24)
			if i%4 == 3 {
				low = 0xff
			}
			photo16.Pix[2*i], photo16.Pix[2*i+1] = v, low
		}
	})
	return photo16
}

// palette8 is the 8-colour palette of 2 levels per channel, shared by all
// contenders.
var palette8 = color.Palette{
	color.RGBA{0, 0, 0, 255}, color.RGBA{0, 0, 255, 255}, color.RGBA{0, 255, 0, 255}, color.RGBA{0, 255, 255, 255},
	color.RGBA{255, 0, 0, 255}, color.RGBA{255, 0, 255, 255}, color.RGBA{255, 255, 0, 255}, color.RGBA{255, 255, 255, 255},
}

// cpuTime returns the user and system CPU time of the process.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// measure runs f b.N times on the 12 MP image and reports MPix/s by wall
// clock and by the process's CPU time (robust on a busy machine).
func measure(b *testing.B, f func(img *image.RGBA)) {
	img := photoImage()
	b.ResetTimer()
	cpu0 := cpuTime()
	for b.Loop() {
		f(img)
	}
	cpu := cpuTime() - cpu0
	pix := float64(width*height) * float64(b.N) / 1e6
	b.ReportMetric(pix/b.Elapsed().Seconds(), "MPix/s")
	if cpu > 0 {
		b.ReportMetric(pix/cpu.Seconds(), "cpu-MPix/s")
	}
}

func engine(o dither.Options) func(*testing.B) {
	return func(b *testing.B) {
		measure(b, func(img *image.RGBA) {
			if _, err := dither.Dither(img, o); err != nil {
				b.Fatal(err)
			}
		})
	}
}

// engine16 is engine on photoImage16: the same picture, dithered at 16 bits.
func engine16(o dither.Options) func(*testing.B) {
	return func(b *testing.B) {
		img := photoImage16()
		measure(b, func(*image.RGBA) {
			if _, err := dither.Dither(img, o); err != nil {
				b.Fatal(err)
			}
		})
	}
}

func BenchmarkEngineFloydSteinbergSRGB(b *testing.B) {
	engine(dither.Options{ColorSpace: dither.SRGB})(b)
}

func BenchmarkEngineFloydSteinbergLinear(b *testing.B) { engine(dither.Options{})(b) }

// BenchmarkEngineFloydSteinbergSRGB2Workers is the wavefront on two
// goroutines (the machine has two cores).
func BenchmarkEngineFloydSteinbergSRGB2Workers(b *testing.B) {
	engine(dither.Options{ColorSpace: dither.SRGB, Workers: 2})(b)
}

func BenchmarkEngineFloydSteinbergPaletteSRGB(b *testing.B) {
	engine(dither.Options{CustomPalette: palette8, ColorSpace: dither.SRGB})(b)
}

func BenchmarkEngineJarvisJudiceNinke(b *testing.B) {
	engine(dither.Options{Algorithm: dither.JarvisJudiceNinke})(b)
}

func BenchmarkEngineBayer8x8(b *testing.B) { engine(dither.Options{Algorithm: dither.Bayer8x8})(b) }

// BenchmarkEngine16FloydSteinbergLinear is the default dither of a 16-bit
// image (a 16-bit PNG), at 16 bits.
func BenchmarkEngine16FloydSteinbergLinear(b *testing.B) { engine16(dither.Options{})(b) }

func BenchmarkEngine16Bayer8x8(b *testing.B) {
	engine16(dither.Options{Algorithm: dither.Bayer8x8})(b)
}

func BenchmarkEngineBlueNoise(b *testing.B) { engine(dither.Options{Algorithm: dither.BlueNoise})(b) }

// BenchmarkMakeworldFloydSteinberg is makeworld-the-better-one/dither
// (linear light, float) to a paletted image, the same 8 colours.
func BenchmarkMakeworldFloydSteinberg(b *testing.B) {
	d := mw.NewDitherer(palette8)
	d.Matrix = mw.FloydSteinberg
	measure(b, func(img *image.RGBA) { d.DitherPaletted(img) })
}

// BenchmarkMakeworldBayer8x8 is makeworld's ordered dithering.
func BenchmarkMakeworldBayer8x8(b *testing.B) {
	d := mw.NewDitherer(palette8)
	d.Mapper = mw.Bayer(8, 8, 1.0)
	measure(b, func(img *image.RGBA) { d.DitherPaletted(img) })
}

// BenchmarkDrawFloydSteinberg is the standard library's Floyd-Steinberg
// (sRGB, nearest palette colour) into a paletted image.
func BenchmarkDrawFloydSteinberg(b *testing.B) {
	measure(b, func(img *image.RGBA) {
		dst := image.NewPaletted(img.Bounds(), palette8)
		draw.FloydSteinberg.Draw(dst, dst.Bounds(), img, image.Point{})
	})
}

var (
	jpegOnce sync.Once
	jpegData []byte
)

func photoJPEG(b *testing.B) []byte {
	jpegOnce.Do(func() {
		var buf bytes.Buffer
		if err := jpeg.Encode(&buf, photoImage(), &jpeg.Options{Quality: 90}); err != nil {
			b.Fatal(err)
		}
		jpegData = buf.Bytes()
	})
	return jpegData
}

// BenchmarkPipeline is the offline path of a 12 MP JPEG: decode, dither
// (Floyd-Steinberg, 2 levels, linear), encode PNG; each stage alone and
// all together.
func BenchmarkPipeline(b *testing.B) {
	data := photoJPEG(b)
	img, _, err := imagefile.Decode(bytes.NewReader(data), imagefile.Limits{})
	if err != nil {
		b.Fatal(err)
	}
	out, err := dither.Dither(img, dither.Options{})
	if err != nil {
		b.Fatal(err)
	}
	stages := []struct {
		name string
		run  func() error
	}{
		{"decode", func() error { _, _, err := imagefile.Decode(bytes.NewReader(data), imagefile.Limits{}); return err }},
		{"dither", func() error { _, err := dither.Dither(img, dither.Options{}); return err }},
		{"encode", func() error { return imagefile.EncodePNG(io.Discard, out) }},
		{"total", func() error {
			img, _, err := imagefile.Decode(bytes.NewReader(data), imagefile.Limits{})
			if err != nil {
				return err
			}
			res, err := dither.Dither(img, dither.Options{})
			if err != nil {
				return err
			}
			return imagefile.EncodePNG(io.Discard, res)
		}},
	}
	for _, s := range stages {
		b.Run(s.name, func(b *testing.B) {
			measure(b, func(*image.RGBA) {
				if err := s.run(); err != nil {
					b.Fatal(err)
				}
			})
		})
	}
}

// TestPrintRatios runs the engine and its peers in one process and
// prints MPix/s and the ratios. It is slow (makeworld needs seconds per
// image), so it is skipped with -short.
func TestPrintRatios(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: runs the 12 MP benchmarks")
	}
	rows := []struct {
		name string
		f    func(*testing.B)
	}{
		{"engine FS sRGB", BenchmarkEngineFloydSteinbergSRGB},
		{"engine FS linear", BenchmarkEngineFloydSteinbergLinear},
		{"engine FS sRGB 2 workers", BenchmarkEngineFloydSteinbergSRGB2Workers},
		{"engine FS palette sRGB", BenchmarkEngineFloydSteinbergPaletteSRGB},
		{"engine Bayer 8x8", BenchmarkEngineBayer8x8},
		{"image/draw FS", BenchmarkDrawFloydSteinberg},
		{"makeworld FS", BenchmarkMakeworldFloydSteinberg},
		{"makeworld Bayer 8x8", BenchmarkMakeworldBayer8x8},
	}
	wall, cpu := map[string]float64{}, map[string]float64{}
	for _, r := range rows {
		res := testing.Benchmark(r.f)
		wall[r.name], cpu[r.name] = res.Extra["MPix/s"], res.Extra["cpu-MPix/s"]
		t.Logf("%-24s %8.1f MPix/s  %8.1f cpu-MPix/s  (%d runs)", r.name, wall[r.name], cpu[r.name], res.N)
	}
	for _, p := range [][2]string{
		{"engine FS sRGB", "makeworld FS"}, {"engine FS linear", "makeworld FS"},
		{"engine FS sRGB", "image/draw FS"}, {"engine FS palette sRGB", "image/draw FS"},
		{"engine FS sRGB 2 workers", "engine FS sRGB"},
		{"engine Bayer 8x8", "makeworld Bayer 8x8"},
	} {
		t.Log(fmt.Sprintf("ratio %-22s / %-20s %6.1fx wall  %6.1fx cpu", p[0], p[1], wall[p[0]]/wall[p[1]], cpu[p[0]]/cpu[p[1]]))
	}
}

// TestPrint16BitRatios compares the engine on a 16-bit image with the
// engine on the same picture at 8 bits, in one process: the two sides
// alternate for three rounds, and the best rate of each is printed with
// their ratio, so that outside load hits both alike. Skipped with -short.
func TestPrint16BitRatios(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: runs the 12 MP benchmarks")
	}
	pairs := []struct {
		name          string
		bits8, bits16 func(*testing.B)
	}{
		{"FS linear", BenchmarkEngineFloydSteinbergLinear, BenchmarkEngine16FloydSteinbergLinear},
		{"Bayer 8x8", BenchmarkEngineBayer8x8, BenchmarkEngine16Bayer8x8},
	}
	for _, p := range pairs {
		var wall, cpu [2]float64 // best of 8-bit, 16-bit
		for range 3 {
			for i, f := range []func(*testing.B){p.bits8, p.bits16} {
				res := testing.Benchmark(f)
				wall[i], cpu[i] = max(wall[i], res.Extra["MPix/s"]), max(cpu[i], res.Extra["cpu-MPix/s"])
			}
		}
		t.Logf("%-10s 8-bit %6.1f MPix/s %6.1f cpu-MPix/s; 16-bit %6.1f MPix/s %6.1f cpu-MPix/s; 16/8 %.2fx wall %.2fx cpu",
			p.name, wall[0], cpu[0], wall[1], cpu[1], wall[1]/wall[0], cpu[1]/cpu[0])
	}
}
