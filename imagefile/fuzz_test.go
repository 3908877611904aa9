package imagefile

import (
	"bytes"
	"fmt"
	"image"
	"image/color/palette"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"

	"github.com/imageservice/imageservice/dither"
)

// fuzzLimits keep fuzzing cheap; allocation is checked against them.
var fuzzLimits = Limits{MaxBytes: 1 << 20, MaxPixels: 1 << 20}

// maxFuzzAlloc bounds what one decode and dither may allocate under
// fuzzLimits: a few copies of a 1 MP image at 8 bytes a pixel, and more.
const maxFuzzAlloc = 64 << 20

// FuzzDecodeDither decodes arbitrary bytes and dithers what decodes. It
// must never panic, and never allocate much past the limits (a header
// claiming a huge image is refused before the pixels are allocated).
func FuzzDecodeDither(f *testing.F) {
	for _, seed := range fuzzSeeds(f) {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		img, info, err := Decode(bytes.NewReader(data), fuzzLimits)
		if err == nil {
			if n := int64(info.Width) * int64(info.Height); n > fuzzLimits.MaxPixels || n <= 0 {
				t.Fatalf("decoded %dx%d past the pixel cap", info.Width, info.Height)
			}
			for _, a := range []dither.Algorithm{dither.FloydSteinberg, dither.Bayer4x4} {
				if _, err := dither.Dither(img, dither.Options{Algorithm: a, Levels: 3}); err != nil {
					t.Fatal(err)
				}
			}
		}
		runtime.ReadMemStats(&after)
		if d := after.TotalAlloc - before.TotalAlloc; d > maxFuzzAlloc {
			t.Fatalf("allocated %d bytes for %d input bytes", d, len(data))
		}
	})
}

// fuzzSeeds returns tiny valid and broken PNG, GIF, JPEG and WebP files,
// with and without EXIF orientation.
func fuzzSeeds(tb testing.TB) map[string][]byte {
	q := quadrants(5, 3)
	pal := image.NewPaletted(image.Rect(0, 0, 4, 4), palette.WebSafe)
	p := pngBytes(tb, q)
	j := jpegBytes(tb, q)
	g := gifBytes(tb, pal)
	wp := webpBytes(tb, q)
	tiff := exifTIFF(6, true)
	pExif := withPNGExif(p, tiff, false)
	wpExif := withWebPExif(wp, 5, 3, append([]byte("Exif\x00\x00"), tiff...), true)
	return map[string][]byte{
		"png-orientation-6":      pExif,
		"png-exif-after-idat":    withPNGExif(p, tiff, true),
		"png-exif-truncated":     pExif[:8+25+8+len(tiff)/2],
		"webp-valid":             wp,
		"webp-orientation-6":     wpExif,
		"webp-exif-truncated":    wpExif[:len(wpExif)-8],
		"webp-exif-without-flag": withWebPExif(wp, 5, 3, tiff, false),
		"png-valid":              p,
		"png-truncated":          p[:len(p)-12],
		"png-huge-header":        forgedPNG(100000, 100000),
		"png-zero-width":         forgedPNG(0, 1),
		"jpeg-valid":             j,
		"jpeg-orientation-6":     withOrientation(j, 6, false),
		"jpeg-truncated":         j[:len(j)/2],
		"gif-valid":              g,
		"gif-truncated":          g[:len(g)-5],
		"not-an-image":           []byte("GIF8"),
	}
}

// TestWriteFuzzCorpus rewrites testdata/fuzz/FuzzDecodeDither from
// fuzzSeeds when IMAGEFILE_WRITE_CORPUS=1; otherwise it checks that the
// committed corpus is there.
func TestWriteFuzzCorpus(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzDecodeDither")
	seeds := fuzzSeeds(t)
	if os.Getenv("IMAGEFILE_WRITE_CORPUS") != "1" {
		entries, err := os.ReadDir(dir)
		if err != nil || len(entries) < len(seeds) {
			t.Fatalf("committed fuzz corpus missing (%v); run with IMAGEFILE_WRITE_CORPUS=1", err)
		}
		return
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, data := range seeds {
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%s)\n", strconv.Quote(string(data)))
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
