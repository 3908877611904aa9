package dither

import (
	"context"
	"errors"
	"image"
	"image/color"
	"image/draw"
	"math"
	"strings"
	"sync"
	"testing"
)

func mustDither(t *testing.T, img image.Image, o Options) image.Image {
	t.Helper()
	out, err := Dither(img, o)
	if err != nil {
		t.Fatalf("Dither(%+v): %v", o, err)
	}
	return out
}

func TestParseAlgorithm(t *testing.T) {
	for _, a := range Algorithms() {
		for _, s := range []string{a.String(), a.EnumName(), strings.ToLower(a.EnumName()), strings.ToUpper(a.String())} {
			got, err := ParseAlgorithm(s)
			if err != nil || got != a {
				t.Errorf("ParseAlgorithm(%q) = %v, %v; want %v", s, got, err, a)
			}
		}
	}
	if len(Algorithms()) != 15 || Algorithms()[0] != FloydSteinberg {
		t.Errorf("Algorithms() = %v", Algorithms())
	}
	if got, _ := ParseAlgorithm("BAYER_8X8"); got != Bayer8x8 {
		t.Errorf("BAYER_8X8 parsed as %v", got)
	}
	_, err := ParseAlgorithm("floyd")
	if err == nil || !strings.Contains(err.Error(), "floyd-steinberg") {
		t.Errorf("unknown name: error %v should list the valid names", err)
	}
	var a Algorithm
	if err := a.UnmarshalText([]byte("sierra-lite")); err != nil || a != SierraLite {
		t.Errorf("UnmarshalText: %v %v", a, err)
	}
}

func TestValidate(t *testing.T) {
	big := make(color.Palette, 257)
	for i := range big {
		big[i] = color.Gray{uint8(i)}
	}
	bad := map[string]Options{
		"levels 1":       {Levels: 1},
		"levels 257":     {Levels: 257},
		"red levels 1":   {LevelsR: 1},
		"strength":       {Strength: 1.5},
		"negative":       {Strength: -0.1},
		"NaN strength":   {Strength: math.NaN()},
		"palette":        {Palette: "c64"},
		"big palette":    {CustomPalette: big},
		"empty palette":  {CustomPalette: color.Palette{}},
		"both palettes":  {Palette: "cga", CustomPalette: color.Palette{color.Black}},
		"algorithm":      {Algorithm: 99},
		"colour space":   {ColorSpace: 7},
		"nil colour":     {CustomPalette: color.Palette{nil}},
		"levels 0 green": {LevelsG: 300},
	}
	for name, o := range bad {
		err := o.Validate()
		if !errors.Is(err, ErrInvalidOptions) {
			t.Errorf("%s: Validate() = %v, want ErrInvalidOptions", name, err)
		}
		if _, err := Dither(image.NewGray(image.Rect(0, 0, 1, 1)), o); err == nil {
			t.Errorf("%s: Dither accepted invalid options", name)
		}
	}
	good := []Options{{}, {Levels: 256}, {Levels: 2, LevelsB: 3}, {Palette: "web-safe"}, {Strength: 0.5}, {Grayscale: true, Palette: "gameboy"}}
	for _, o := range good {
		if err := o.Validate(); err != nil {
			t.Errorf("Validate(%+v) = %v", o, err)
		}
	}
}

func TestKernelWeights(t *testing.T) {
	for _, a := range Algorithms() {
		if !a.IsErrorDiffusion() {
			continue
		}
		k := kernels[a]
		sum := 0
		for _, tp := range k.taps {
			sum += tp.w
			if tp.dy < 0 || tp.dy > 2 || (tp.dy == 0 && tp.dx <= 0) || tp.dx < -2 || tp.dx > 2 {
				t.Errorf("%v: tap %+v is not ahead of the current pixel within 2", a, tp)
			}
		}
		want := k.divisor
		if a == Atkinson {
			want = 6 // Atkinson diffuses 6/8 of the error by design
		}
		if sum != want {
			t.Errorf("%v: weights sum to %d, want %d", a, sum, want)
		}
	}
	if got := kernels[FloydSteinberg]; len(got.taps) != 4 || got.divisor != 16 || got.taps[0] != (tap{1, 0, 7}) {
		t.Errorf("Floyd-Steinberg kernel = %+v", got)
	}
	rows := map[Algorithm]int{FloydSteinberg: 2, JarvisJudiceNinke: 3, Stucki: 3, Burkes: 2, Sierra: 3, SierraTwoRow: 2, SierraLite: 2, Atkinson: 3}
	for a, n := range rows {
		if kernels[a].rows() != n {
			t.Errorf("%v touches %d rows, want %d", a, kernels[a].rows(), n)
		}
	}
}

func TestSerpentineDiffers(t *testing.T) {
	img := testImage(40, 30, 9)
	a := mustDither(t, img, Options{ColorSpace: SRGB}).(*image.Paletted)
	b := mustDither(t, img, Options{ColorSpace: SRGB, Serpentine: true}).(*image.Paletted)
	same := string(a.Pix[:40]) == string(b.Pix[:40])
	if !same {
		t.Error("serpentine changed the first row, which runs left to right")
	}
	if string(a.Pix) == string(b.Pix) {
		t.Error("serpentine made no difference")
	}
}

// flat returns a w x h opaque grey image of value v.
func flat(w, h int, v uint8) *image.RGBA {
	m := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.Draw(m, m.Bounds(), image.NewUniform(color.RGBA{v, v, v, 255}), image.Point{}, draw.Src)
	return m
}

// meanLight returns the mean of the red channel over img, in linear light
// when linear is set, as a fraction of full scale.
func meanLight(img image.Image, linear bool) float64 {
	b := img.Bounds()
	var sum float64
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, _, _, _ := img.At(x, y).RGBA()
			v := float64(r) / 0xffff
			if linear {
				v = srgbToLinear(v)
			}
			sum += v
		}
	}
	return sum / float64(b.Dx()*b.Dy())
}

func TestMeanBrightnessPreserved(t *testing.T) {
	for _, cs := range []ColorSpace{SRGB, Linear} {
		for _, a := range []Algorithm{FloydSteinberg, JarvisJudiceNinke, Sierra, Bayer8x8, BlueNoise, Random} {
			for _, v := range []uint8{13, 64, 128, 200, 250} {
				img := flat(64, 64, v)
				out := mustDither(t, img, Options{Algorithm: a, ColorSpace: cs})
				want, got := meanLight(img, cs == Linear), meanLight(out, cs == Linear)
				if math.Abs(got-want) > 0.02 {
					t.Errorf("%v %v grey %d: mean %.4f, want %.4f", a, cs, v, got, want)
				}
			}
		}
	}
}

func TestDeterministic(t *testing.T) {
	img := testImage(50, 40, 3)
	for _, a := range Algorithms() {
		o := Options{Algorithm: a, Seed: 42, Levels: 3}
		x, y := mustDither(t, img, o).(*image.Paletted), mustDither(t, img, o).(*image.Paletted)
		if string(x.Pix) != string(y.Pix) {
			t.Errorf("%v: two runs differ", a)
		}
	}
	r1 := mustDither(t, img, Options{Algorithm: Random, Seed: 1}).(*image.Paletted)
	r2 := mustDither(t, img, Options{Algorithm: Random, Seed: 2}).(*image.Paletted)
	if string(r1.Pix) == string(r2.Pix) {
		t.Error("random: different seeds gave the same result")
	}
}

// sourceTypes returns img (exactly representable in every type: greys
// only when gray is set) as each supported source type.
func sourceTypes(img *image.NRGBA, gray bool) map[string]image.Image {
	b := img.Bounds()
	rgba := image.NewRGBA(b)
	draw.Draw(rgba, b, img, b.Min, draw.Src)
	out := map[string]image.Image{"nrgba": img, "rgba": rgba, "rgba64": toRGBA64(img)}
	if gray {
		g := image.NewGray(b)
		draw.Draw(g, b, img, b.Min, draw.Src)
		out["gray"] = g
	}
	pal := image.NewPaletted(b, nil)
	seen := map[color.NRGBA]uint8{}
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			c := img.NRGBAAt(x, y)
			i, ok := seen[c]
			if !ok && len(seen) == 256 {
				return out
			}
			if !ok {
				i = uint8(len(seen))
				seen[c] = i
				pal.Palette = append(pal.Palette, c)
			}
			pal.SetColorIndex(x, y, i)
		}
	}
	out["paletted"] = pal
	return out
}

func toRGBA64(img image.Image) *image.RGBA64 {
	m := image.NewRGBA64(img.Bounds())
	draw.Draw(m, m.Bounds(), img, img.Bounds().Min, draw.Src)
	return m
}

// smallPaletteImage returns an image of at most 16 greys and colours.
func smallPaletteImage(w, h int, gray bool) *image.NRGBA {
	m := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			n := mix(7, uint64(y*w+x)) % 16
			v := uint8(n * 17)
			c := color.NRGBA{v, 255 - v, uint8(n * 9), 255}
			if gray {
				c = color.NRGBA{v, v, v, 255}
			}
			m.SetNRGBA(x, y, c)
		}
	}
	return m
}

func TestSourceTypesAgree(t *testing.T) {
	for _, gray := range []bool{false, true} {
		img := smallPaletteImage(37, 21, gray)
		for _, o := range []Options{{}, {Algorithm: Bayer4x4, Levels: 3}, {Palette: "cga"}, {Grayscale: true, Algorithm: Atkinson}} {
			want := mustDither(t, img, o)
			for name, src := range sourceTypes(img, gray) {
				if !sameImage(mustDither(t, src, o), want) {
					t.Errorf("gray %v %+v: %s source differs from NRGBA", gray, o, name)
				}
			}
		}
	}
}

func TestYCbCrMatchesRGBA(t *testing.T) {
	y := image.NewYCbCr(image.Rect(0, 0, 33, 17), image.YCbCrSubsampleRatio420)
	for i := range y.Y {
		y.Y[i] = uint8(mix(1, uint64(i)))
	}
	for i := range y.Cb {
		y.Cb[i], y.Cr[i] = uint8(mix(2, uint64(i))), uint8(mix(3, uint64(i)))
	}
	rgba := image.NewRGBA(y.Bounds())
	draw.Draw(rgba, rgba.Bounds(), y, image.Point{}, draw.Src)
	for _, o := range []Options{{}, {Algorithm: BlueNoise}, {Palette: "gameboy", Serpentine: true}} {
		if !sameImage(mustDither(t, y, o), mustDither(t, rgba, o)) {
			t.Errorf("%+v: YCbCr differs from RGBA", o)
		}
	}
}

// sameImage reports whether a and b have equal bounds and colours.
func sameImage(a, b image.Image) bool {
	if a.Bounds() != b.Bounds() {
		return false
	}
	for y := a.Bounds().Min.Y; y < a.Bounds().Max.Y; y++ {
		for x := a.Bounds().Min.X; x < a.Bounds().Max.X; x++ {
			if color.NRGBAModel.Convert(a.At(x, y)) != color.NRGBAModel.Convert(b.At(x, y)) {
				return false
			}
		}
	}
	return true
}

func TestOddSizes(t *testing.T) {
	for _, sz := range [][2]int{{1, 1}, {1, 7}, {7, 1}, {20000, 2}, {2, 3}, {0, 0}, {0, 5}} {
		img := testImage(sz[0], sz[1], 4)
		for _, a := range Algorithms() {
			for _, serp := range []bool{false, true} {
				out := mustDither(t, img, Options{Algorithm: a, Serpentine: serp, Levels: 2})
				if out.Bounds() != image.Rect(0, 0, sz[0], sz[1]) {
					t.Fatalf("%v %v: bounds %v", a, sz, out.Bounds())
				}
			}
		}
	}
}

func TestSubImageOffset(t *testing.T) {
	img := testImage(30, 30, 5)
	sub := img.SubImage(image.Rect(5, 7, 25, 20)).(*image.NRGBA)
	cp := image.NewNRGBA(image.Rect(0, 0, 20, 13))
	draw.Draw(cp, cp.Bounds(), sub, sub.Bounds().Min, draw.Src)
	if !sameImage(mustDither(t, sub, Options{}), mustDither(t, cp, Options{})) {
		t.Error("a sub-image dithers differently from its copy")
	}
}

func TestTransparencyKept(t *testing.T) {
	img := testImage(20, 10, 6)
	for x := 0; x < 20; x++ {
		img.SetNRGBA(x, 3, color.NRGBA{})
	}
	for _, a := range []Algorithm{FloydSteinberg, Stucki, Bayer2x2, None} {
		out := mustDither(t, img, Options{Algorithm: a})
		p, ok := out.(*image.Paletted)
		if !ok {
			t.Fatalf("%v: binary alpha gave %T, want *image.Paletted", a, out)
		}
		for x := 0; x < 20; x++ {
			if _, _, _, al := p.At(x, 3).RGBA(); al != 0 {
				t.Fatalf("%v: pixel (%d,3) not transparent", a, x)
			}
			if _, _, _, al := p.At(x, 4).RGBA(); al != 0xffff {
				t.Fatalf("%v: pixel (%d,4) not opaque", a, x)
			}
		}
	}
	rgba := image.NewRGBA(img.Bounds())
	draw.Draw(rgba, rgba.Bounds(), img, image.Point{}, draw.Src)
	if !sameImage(mustDither(t, rgba, Options{}), mustDither(t, img, Options{})) {
		t.Error("RGBA with transparency differs from NRGBA")
	}
	img.SetNRGBA(0, 0, color.NRGBA{200, 100, 50, 128})
	out := mustDither(t, img, Options{})
	n, ok := out.(*image.NRGBA)
	if !ok {
		t.Fatalf("partial alpha gave %T, want *image.NRGBA", out)
	}
	if n.NRGBAAt(0, 0).A != 128 || n.NRGBAAt(0, 3).A != 0 || n.NRGBAAt(5, 5).A != 255 {
		t.Error("alpha values not kept")
	}
}

func TestPalettedOutput(t *testing.T) {
	img := testImage(64, 48, 8)
	for n := 2; n <= 7; n++ {
		out := mustDither(t, img, Options{Levels: n})
		if n*n*n > 256 {
			if _, ok := out.(*image.RGBA); !ok {
				t.Errorf("levels %d: got %T, want *image.RGBA", n, out)
			}
			continue
		}
		p, ok := out.(*image.Paletted)
		if !ok {
			t.Fatalf("levels %d: got %T, want *image.Paletted", n, out)
		}
		if len(p.Palette) > n*n*n {
			t.Errorf("levels %d: %d colours", n, len(p.Palette))
		}
	}
	for _, name := range PaletteNames() {
		pal, _ := NamedPalette(name)
		p, ok := mustDither(t, img, Options{Palette: name}).(*image.Paletted)
		if !ok || len(p.Palette) != len(pal) {
			t.Errorf("palette %s: got %T with wrong palette", name, p)
		}
	}
	g := mustDither(t, img, Options{Grayscale: true, Levels: 4}).(*image.Paletted)
	for _, c := range g.Palette {
		if r, gg, b, _ := c.RGBA(); r != gg || gg != b {
			t.Errorf("grayscale palette has colour %v", c)
		}
	}
}

func TestStrength(t *testing.T) {
	img := flat(32, 32, 100)
	full := mustDither(t, img, Options{Strength: 1}).(*image.Paletted)
	none := mustDither(t, img, Options{Strength: 0.001, Algorithm: Bayer8x8}).(*image.Paletted)
	post := mustDither(t, img, Options{Algorithm: None}).(*image.Paletted)
	if string(none.Pix) != string(post.Pix) {
		t.Error("near-zero strength should posterize")
	}
	if string(full.Pix) == string(post.Pix) {
		t.Error("full strength should dither")
	}
}

func TestCustomPalette(t *testing.T) {
	pal := color.Palette{color.RGBA{255, 0, 0, 255}, color.RGBA{0, 0, 255, 255}}
	img := flat(16, 16, 128)
	p := mustDither(t, img, Options{CustomPalette: pal}).(*image.Paletted)
	if len(p.Palette) != 2 {
		t.Fatalf("palette has %d colours", len(p.Palette))
	}
}

func TestBlueNoiseMask(t *testing.T) {
	m := blueNoiseMask()
	seen := make([]bool, len(m))
	for _, r := range m {
		if r < 0 || r >= len(m) || seen[r] {
			t.Fatalf("rank %d repeated or out of range", r)
		}
		seen[r] = true
	}
	// The darkest 1/16 of the mask must be spread out: no two of its
	// pixels touch (blue noise avoids clumps).
	n := blueNoiseSize
	for i, r := range m {
		if r >= len(m)/16 {
			continue
		}
		x, y := i%n, i/n
		for _, d := range [][2]int{{1, 0}, {0, 1}, {1, 1}, {-1, 1}} {
			j := ((y+d[1]+n)%n)*n + (x+d[0]+n)%n
			if m[j] < len(m)/16 {
				t.Fatalf("pixels %d and %d of the first 1/16 touch", i, j)
			}
		}
	}
}

func TestYCbCrConversionExact(t *testing.T) {
	for y := 0; y < 256; y += 3 {
		for cb := 0; cb < 256; cb++ {
			for cr := 0; cr < 256; cr++ {
				r1, g1, b1 := color.YCbCrToRGB(uint8(y), uint8(cb), uint8(cr))
				r2, g2, b2 := ycbcrToRGB(uint8(y), uint8(cb), uint8(cr))
				if r1 != r2 || g1 != g2 || b1 != b2 {
					t.Fatalf("ycbcrToRGB(%d,%d,%d) = %d %d %d, want %d %d %d", y, cb, cr, r2, g2, b2, r1, g1, b1)
				}
			}
		}
	}
}

func TestYCbCrSubsamplings(t *testing.T) {
	ratios := []image.YCbCrSubsampleRatio{image.YCbCrSubsampleRatio444, image.YCbCrSubsampleRatio422,
		image.YCbCrSubsampleRatio420, image.YCbCrSubsampleRatio440, image.YCbCrSubsampleRatio411, image.YCbCrSubsampleRatio410}
	for _, r := range ratios {
		for _, rect := range []image.Rectangle{image.Rect(0, 0, 13, 7), image.Rect(3, 5, 20, 11)} {
			y := image.NewYCbCr(rect, r)
			for i := range y.Y {
				y.Y[i] = uint8(mix(1, uint64(i)))
			}
			for i := range y.Cb {
				y.Cb[i], y.Cr[i] = uint8(mix(2, uint64(i))), uint8(mix(3, uint64(i)))
			}
			sub := y.SubImage(image.Rect(rect.Min.X+1, rect.Min.Y+1, rect.Max.X, rect.Max.Y))
			for _, img := range []image.Image{y, sub} {
				rgba := image.NewRGBA(img.Bounds())
				draw.Draw(rgba, rgba.Bounds(), img, img.Bounds().Min, draw.Src)
				if !sameImage(mustDither(t, img, Options{}), mustDither(t, rgba, Options{})) {
					t.Errorf("%v %v: YCbCr differs from RGBA", r, img.Bounds())
				}
			}
		}
	}
}

// TestFastPathsMatchGeneric checks every specialised row function against
// the generic code it replaces, on 8-bit and 16-bit sources.
func TestFastPathsMatchGeneric(t *testing.T) {
	img := testImage(45, 23, 11)
	holes := testImage(45, 23, 12)
	img16, holes16 := testImage16(45, 23, 11), testImage16(45, 23, 12)
	for x := 0; x < 45; x += 4 {
		holes.SetNRGBA(x, x%23, color.NRGBA{})
		holes16.SetNRGBA64(x, x%23, color.NRGBA64{})
	}
	opts := []Options{
		{}, {ColorSpace: SRGB}, {Serpentine: true}, {Strength: 0.6}, {Levels: 5}, {Levels: 7, Serpentine: true},
		{Palette: "cga"}, {Palette: "web-safe", Serpentine: true, Strength: 0.8}, {Palette: "gameboy", ColorSpace: SRGB},
		{Algorithm: Bayer8x8}, {Algorithm: Bayer16x16, Levels: 3}, {Algorithm: BlueNoise}, {Algorithm: Random, Levels: 7},
		{Algorithm: None, Levels: 4}, {Algorithm: Bayer2x2, Strength: 0.3},
	}
	checkFastPaths(t, []image.Image{img, holes, img16, holes16}, opts)
	// Ordered dithering of large 16-bit images goes through a table.
	big, holesBig, partialBig := testImage16(256, 256, 13), testImage16(256, 256, 14), testImage16(256, 256, 15)
	for x := 0; x < 256; x += 3 {
		holesBig.SetNRGBA64(x, x, color.NRGBA64{})
		partialBig.SetNRGBA64(x, x, color.NRGBA64{0x1234, 0x5678, 0x9abc, 0x8000})
	}
	checkFastPaths(t, []image.Image{big, holesBig, partialBig}, []Options{
		{Algorithm: Bayer8x8}, {Algorithm: Bayer16x16, Levels: 3}, {Algorithm: BlueNoise}, {Algorithm: Random, Levels: 7},
		{Algorithm: None, Levels: 4}, {Algorithm: Bayer2x2, Strength: 0.3}, {Algorithm: Bayer4x4, LevelsR: 3, LevelsG: 5, LevelsB: 2},
		{Algorithm: Bayer4x4, Levels: 16, ColorSpace: SRGB},
	})
}

// checkFastPaths dithers every source with every option, with and
// without the specialised row functions, and compares.
func checkFastPaths(t *testing.T, srcs []image.Image, opts []Options) {
	t.Helper()
	for i, src := range srcs {
		for _, o := range opts {
			fast := mustDither(t, src, o)
			genericOnly = true
			slow := mustDither(t, src, o)
			genericOnly = false
			if !sameImage(fast, slow) {
				t.Errorf("%T %d %+v: fast path differs from the generic one", src, i, o)
			}
		}
	}
}

// TestConvertedSources checks sources read through a conversion against
// Go's own: a CMYK image (8 bits) dithers as its RGBA conversion; a Gray16
// image (16 bits) as its NRGBA64 conversion, whichever way the engine
// reads it, and not as its 8-bit RGBA conversion, unless its values are
// 8-bit ones (v*257), which dither exactly as at 8 bits.
func TestConvertedSources(t *testing.T) {
	cmyk := image.NewCMYK(image.Rect(0, 0, 19, 11))
	for i := range cmyk.Pix {
		cmyk.Pix[i] = uint8(mix(9, uint64(i)))
	}
	g16 := image.NewGray16(image.Rect(0, 0, 19, 11))
	for i := range g16.Pix {
		g16.Pix[i] = uint8(mix(10, uint64(i)))
	}
	opts := []Options{{}, {Algorithm: Bayer4x4, Levels: 4}}
	for _, o := range opts {
		if !sameImage(mustDither(t, cmyk, o), mustDither(t, convert(cmyk, image.NewRGBA), o)) {
			t.Errorf("CMYK %+v: differs from its RGBA conversion", o)
		}
		want := mustDither(t, convert(g16, image.NewNRGBA64), o)
		for name, src := range wideSources(g16) {
			if !sameImage(mustDither(t, src, o), want) {
				t.Errorf("Gray16 as %s %+v: differs from its NRGBA64 conversion", name, o)
			}
		}
	}
	o := opts[1]
	if sameImage(mustDither(t, g16, o), mustDither(t, convert(g16, image.NewRGBA), o)) {
		t.Errorf("Gray16 %+v: dithered as its 8-bit RGBA conversion", o)
	}
	for i := 0; i < len(g16.Pix); i += 2 {
		g16.Pix[i+1] = g16.Pix[i] // v*257: an 8-bit value
	}
	for _, o := range opts {
		if !sameImage(mustDither(t, g16, o), mustDither(t, convert(g16, image.NewRGBA), o)) {
			t.Errorf("Gray16 of 8-bit values %+v: differs from its RGBA conversion", o)
		}
	}
}

// convert returns src drawn into a new image made by newImage.
func convert[M draw.Image](src image.Image, newImage func(image.Rectangle) M) M {
	m := newImage(src.Bounds())
	draw.Draw(m, m.Bounds(), src, src.Bounds().Min, draw.Src)
	return m
}

// wideSources returns src (16-bit) as it is and as every other 16-bit
// source the engine reads differently: NRGBA64, RGBA64, and images of
// unknown type with and without RGBA64At.
func wideSources(src image.Image) map[string]image.Image {
	return map[string]image.Image{
		"itself":      src,
		"NRGBA64":     convert(src, image.NewNRGBA64),
		"RGBA64":      convert(src, image.NewRGBA64),
		"RGBA64Image": rgba64Image{src.(image.RGBA64Image)},
		"Image":       plainImage{src},
	}
}

// rgba64Image hides the type of an image but keeps RGBA64At.
type rgba64Image struct{ image.RGBA64Image }

// plainImage hides the type of an image and every method but those of
// image.Image.
type plainImage struct{ m image.Image }

func (p plainImage) ColorModel() color.Model { return p.m.ColorModel() }
func (p plainImage) Bounds() image.Rectangle { return p.m.Bounds() }
func (p plainImage) At(x, y int) color.Color { return p.m.At(x, y) }

func TestWavefrontSameResult(t *testing.T) {
	for _, sz := range [][2]int{{1000, 37}, {3, 5}, {600, 1}, {257, 9}} {
		img := testImage(sz[0], sz[1], 13)
		rgba := image.NewRGBA(img.Bounds())
		draw.Draw(rgba, rgba.Bounds(), img, image.Point{}, draw.Src)
		for _, cs := range []ColorSpace{Linear, SRGB} {
			want := mustDither(t, rgba, Options{ColorSpace: cs}).(*image.Paletted)
			for _, n := range []int{2, 3, 8} {
				got := mustDither(t, rgba, Options{ColorSpace: cs, Workers: n}).(*image.Paletted)
				if string(got.Pix) != string(want.Pix) {
					t.Errorf("%v %v workers %d: differs from one worker", sz, cs, n)
				}
			}
		}
	}
	// A transparent row found half-way makes the workers stop and start again.
	img := testImage(300, 40, 14)
	for x := 0; x < 300; x += 7 {
		img.SetNRGBA(x, 30, color.NRGBA{})
	}
	want := mustDither(t, img, Options{})
	if got := mustDither(t, img, Options{Workers: 2}); !sameImage(got, want) {
		t.Error("workers 2 with transparency differs from one worker")
	}
	if err := (Options{Workers: -1}).Validate(); err == nil {
		t.Error("negative workers accepted")
	}
}

// TestPaletteErrorStaysBounded dithers flat colours that a palette cannot
// reach: the error left over at every pixel must not pile up until far
// colours are chosen (or the sums overflow).
func TestPaletteErrorStaysBounded(t *testing.T) {
	cases := []struct {
		palette string
		fill    color.NRGBA
		far     func(c color.Color) bool // a colour no pixel may take
	}{
		{"cga", color.NRGBA{255, 0, 0, 255}, func(c color.Color) bool {
			_, g, b, _ := c.RGBA()
			return g > 0x5555 || b > 0x5555
		}},
		{"gameboy", color.NRGBA{255, 255, 255, 255}, func(c color.Color) bool {
			r, _, _, _ := c.RGBA()
			return r < 0x8b8b
		}},
	}
	img := image.NewNRGBA(image.Rect(0, 0, 1200, 1200))
	for _, c := range cases {
		draw.Draw(img, img.Bounds(), image.NewUniform(c.fill), image.Point{}, draw.Src)
		for _, alg := range []Algorithm{FloydSteinberg, JarvisJudiceNinke, SierraLite} {
			out := mustDither(t, img, Options{Palette: c.palette, Algorithm: alg}).(*image.Paletted)
			far := 0
			for _, i := range out.Pix {
				if c.far(out.Palette[i]) {
					far++
				}
			}
			if far > 0 {
				t.Errorf("%s %v on %v: %d pixels took far colours", c.palette, alg, c.fill, far)
			}
		}
	}
}

// cancelingImage hides an image's type and cancels a context the second
// time row cancelRow is read (the first is the scan for transparency),
// and counts the reads of its rows. Several workers may read it at once.
type cancelingImage struct {
	plainImage
	cancelRow int
	cancel    context.CancelFunc
	mu        sync.Mutex
	reads     map[int]int // of pixel (0, y)
}

func (c *cancelingImage) At(x, y int) color.Color {
	if x == c.plainImage.Bounds().Min.X {
		c.mu.Lock()
		c.reads[y]++
		if y == c.cancelRow && c.reads[y] == 2 {
			c.cancel()
		}
		c.mu.Unlock()
	}
	return c.plainImage.At(x, y)
}

// TestDitherContextStops checks that DitherContext stops between rows
// once its ctx is done, on every kind of run loop (error diffusion, the
// several-worker wavefront, ordered, palette; 8 and 16 bits), and returns
// the ctx's error; and that a ctx done before the start dithers nothing.
func TestDitherContextStops(t *testing.T) {
	const w, h = 64, 64
	srcs := map[string]image.Image{"8-bit": testImage(w, h, 51), "16-bit": testImage16(w, h, 52)}
	opts := []Options{{}, {Workers: 2}, {Levels: 5, Serpentine: true}, {Algorithm: Bayer8x8}, {Palette: "cga"}, {Algorithm: Atkinson, Grayscale: true}}
	for name, src := range srcs {
		for _, o := range opts {
			ctx, cancel := context.WithCancel(context.Background())
			img := &cancelingImage{plainImage: plainImage{src}, cancelRow: 5, cancel: cancel, reads: map[int]int{}}
			out, err := DitherContext(ctx, img, o)
			cancel()
			if !errors.Is(err, context.Canceled) || out != nil {
				t.Errorf("%s %+v: canceled at row 5, got %T, %v; want no image and context.Canceled", name, o, out, err)
			}
			if img.reads[5] != 2 || img.reads[h-1] > 1 {
				t.Errorf("%s %+v: row 5 read %d times, the last row %d times; want 2 and at most 1 (the scan)", name, o, img.reads[5], img.reads[h-1])
			}
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if out, err := DitherContext(ctx, testImage(w, h, 53), Options{}); !errors.Is(err, context.Canceled) || out != nil {
		t.Errorf("a canceled ctx: got %T, %v; want no image and context.Canceled", out, err)
	}
	if out, err := DitherContext(context.Background(), testImage(w, h, 53), Options{}); err != nil || !sameImage(out, mustDither(t, testImage(w, h, 53), Options{})) {
		t.Errorf("DitherContext differs from Dither: %v", err)
	}
}
