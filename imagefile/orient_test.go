package imagefile

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/color/palette"
	"image/draw"
	"math/rand/v2"
	"runtime"
	"testing"
)

// uprightOf is the reference of the EXIF orientations, written out on its
// own: where the stored pixel (x, y) of a w x h image with orientation o
// lands in the upright image.
func uprightOf(o, x, y, w, h int) (int, int) {
	switch o {
	case 2: // mirror left-right
		return w - 1 - x, y
	case 3: // half turn
		return w - 1 - x, h - 1 - y
	case 4: // mirror top-bottom
		return x, h - 1 - y
	case 5: // transpose: mirror along the top-left to bottom-right diagonal
		return y, x
	case 6: // a quarter turn clockwise: the left column becomes the top row
		return h - 1 - y, x
	case 7: // transverse: mirror along the other diagonal
		return h - 1 - y, w - 1 - x
	case 8: // a quarter turn anticlockwise: the top row becomes the left column
		return y, w - 1 - x
	}
	return x, y
}

// referenceOrient returns, one pixel at a time through At, the upright
// pixels of src (a snapshot taken before Orient, which may change src)
// with orientation o, by upright position from (0, 0).
func referenceOrient(src image.Image, o int) map[image.Point]color.Color {
	b := src.Bounds()
	want := make(map[image.Point]color.Color, b.Dx()*b.Dy())
	for y := range b.Dy() {
		for x := range b.Dx() {
			ux, uy := uprightOf(o, x, y, b.Dx(), b.Dy())
			want[image.Pt(ux, uy)] = src.At(b.Min.X+x, b.Min.Y+y)
		}
	}
	return want
}

// typed makes a parent image of one of the types Orient keeps, with bounds
// r (not at the origin) and random pixel bytes.
type typed struct {
	name string
	make func(r image.Rectangle) (image.Image, []byte)
}

var keptTypes = []typed{
	{"Gray", func(r image.Rectangle) (image.Image, []byte) { m := image.NewGray(r); return m, m.Pix }},
	{"Gray16", func(r image.Rectangle) (image.Image, []byte) { m := image.NewGray16(r); return m, m.Pix }},
	{"RGBA", func(r image.Rectangle) (image.Image, []byte) { m := image.NewRGBA(r); return m, m.Pix }},
	{"NRGBA", func(r image.Rectangle) (image.Image, []byte) { m := image.NewNRGBA(r); return m, m.Pix }},
	{"RGBA64", func(r image.Rectangle) (image.Image, []byte) { m := image.NewRGBA64(r); return m, m.Pix }},
	{"NRGBA64", func(r image.Rectangle) (image.Image, []byte) { m := image.NewNRGBA64(r); return m, m.Pix }},
	{"Paletted", func(r image.Rectangle) (image.Image, []byte) {
		m := image.NewPaletted(r, palette.Plan9) // 256 colours: every byte is an index
		return m, m.Pix
	}},
}

// subRects are the parts of the parent (-3,2)-(8,11) that are oriented:
// odd and even sizes, one pixel wide or high, the whole parent, and empty.
var subRects = []image.Rectangle{
	image.Rect(-3, 2, 8, 11), // 11 x 9, the whole parent
	image.Rect(-1, 3, 4, 8),  // 5 x 5
	image.Rect(0, 4, 4, 10),  // 4 x 6
	image.Rect(1, 3, 6, 7),   // 5 x 4
	image.Rect(-2, 5, 4, 8),  // 6 x 3
	image.Rect(2, 6, 3, 7),   // 1 x 1
	image.Rect(2, 3, 3, 10),  // 1 x 7
	image.Rect(-3, 9, 5, 10), // 8 x 1
	image.Rect(1, 4, 1, 4),   // empty
}

// checkOriented compares Orient's result with the reference: its type, its
// bounds from the origin and every pixel.
func checkOriented(t *testing.T, name string, got image.Image, wantType string, want map[image.Point]color.Color, w, h, o int) {
	t.Helper()
	if o >= 5 {
		w, h = h, w
	}
	if fmt.Sprintf("%T", got) != wantType || got.Bounds() != image.Rect(0, 0, w, h) {
		t.Fatalf("%s: %T with bounds %v, want %s with %v", name, got, got.Bounds(), wantType, image.Rect(0, 0, w, h))
	}
	for p, c := range want {
		if got.At(p.X, p.Y) != c {
			t.Fatalf("%s: pixel %v is %v, want %v", name, p, got.At(p.X, p.Y), c)
		}
	}
}

// Every orientation of every type Orient keeps gives the reference's
// pixels exactly, for whole images and sub-images (bounds not at the origin, a
// stride wider than the width) of odd and even sizes; turning a sub-image
// in place touches no pixel of its parent outside its bounds.
func TestOrientKeptTypes(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	parentRect := image.Rect(-3, 2, 8, 11)
	for _, typ := range keptTypes {
		for _, sr := range subRects {
			for o := 2; o <= 8; o++ {
				name := fmt.Sprintf("%s %v orientation %d", typ.name, sr, o)
				parent, pix := typ.make(parentRect)
				for i := range pix {
					pix[i] = byte(rng.Uint32())
				}
				before := clone(typ, pix, parentRect)
				sub := subImage(parent, sr)
				want := referenceOrient(subImage(before, sr), o)
				got := Orient(sub, o)
				checkOriented(t, name, got, fmt.Sprintf("%T", parent), want, sr.Dx(), sr.Dy(), o)
				if p, ok := got.(*image.Paletted); ok && len(p.Palette) != len(palette.Plan9) {
					t.Fatalf("%s: palette of %d colours", name, len(p.Palette))
				}
				for y := parentRect.Min.Y; y < parentRect.Max.Y; y++ {
					for x := parentRect.Min.X; x < parentRect.Max.X; x++ {
						if image.Pt(x, y).In(sr) {
							continue
						}
						if a, b := parent.At(x, y), before.At(x, y); a != b {
							t.Fatalf("%s: parent pixel (%d,%d) outside the sub-image changed from %v to %v", name, x, y, b, a)
						}
					}
				}
			}
		}
	}
}

// clone returns an image of type typ with bounds r and a copy of pix.
func clone(typ typed, pix []byte, r image.Rectangle) image.Image {
	m, p := typ.make(r)
	copy(p, pix)
	return m
}

// subImage returns the part r of img.
func subImage(img image.Image, r image.Rectangle) image.Image {
	return img.(interface {
		SubImage(image.Rectangle) image.Image
	}).SubImage(r)
}

// Images of other types become RGBA: every orientation gives the pixels
// of drawing the whole image into RGBA and turning that, as Orient did
// before it converted a row at a time.
func TestOrientConvertedTypes(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	fill := func(bufs ...[]byte) {
		for _, b := range bufs {
			for i := range b {
				b[i] = byte(rng.Uint32())
			}
		}
	}
	parentRect := image.Rect(-3, 2, 8, 11)
	var parents []image.Image
	for _, ratio := range []image.YCbCrSubsampleRatio{image.YCbCrSubsampleRatio444, image.YCbCrSubsampleRatio422,
		image.YCbCrSubsampleRatio420, image.YCbCrSubsampleRatio440, image.YCbCrSubsampleRatio411, image.YCbCrSubsampleRatio410} {
		m := image.NewYCbCr(parentRect, ratio)
		fill(m.Y, m.Cb, m.Cr)
		parents = append(parents, m)
	}
	a := image.NewNYCbCrA(parentRect, image.YCbCrSubsampleRatio420)
	fill(a.Y, a.Cb, a.Cr, a.A)
	c := image.NewCMYK(parentRect)
	fill(c.Pix)
	al := image.NewAlpha16(parentRect)
	fill(al.Pix)
	parents = append(parents, a, c, al)
	for _, parent := range parents {
		for _, sr := range subRects {
			for o := 2; o <= 8; o++ {
				name := fmt.Sprintf("%T %v orientation %d", parent, sr, o)
				sub := subImage(parent, sr)
				rgba := image.NewRGBA(sub.Bounds())
				draw.Draw(rgba, rgba.Bounds(), sub, sub.Bounds().Min, draw.Src)
				want := referenceOrient(rgba, o)
				checkOriented(t, name, Orient(sub, o), "*image.RGBA", want, sr.Dx(), sr.Dy(), o)
			}
		}
	}
}

// allocated returns the bytes that f allocates.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// The mirrors and the half turn (2, 3, 4) of the types Orient keeps
// allocate no second pixel buffer; the quarter turns allocate one. Another
// type, converted to RGBA, allocates the RGBA image and no third buffer.
func TestOrientAllocations(t *testing.T) {
	const w, h = 1000, 500
	for _, typ := range keptTypes {
		img, pix := typ.make(image.Rect(0, 0, w, h))
		size := uint64(len(pix))
		for o := 2; o <= 4; o++ {
			if n := allocated(func() { Orient(img, o) }); n >= size/4 {
				t.Errorf("%s orientation %d allocated %d bytes for a %d-byte image", typ.name, o, n, size)
			}
			if n := testing.AllocsPerRun(10, func() { Orient(img, o) }); n > 1 {
				t.Errorf("%s orientation %d made %.0f allocations, want at most the image header", typ.name, o, n)
			}
		}
		for o := 5; o <= 8; o++ {
			if n := allocated(func() { Orient(img, o) }); n < size {
				t.Errorf("%s orientation %d allocated %d bytes for a %d-byte image: not a copy?", typ.name, o, n, size)
			}
		}
	}
	ycc := image.NewYCbCr(image.Rect(0, 0, w, h), image.YCbCrSubsampleRatio420)
	rgbaSize := uint64(4 * w * h)
	for o := 2; o <= 8; o++ {
		if n := allocated(func() { Orient(ycc, o) }); n < rgbaSize || n >= rgbaSize+rgbaSize/4 {
			t.Errorf("YCbCr orientation %d allocated %d bytes, want one RGBA image of %d", o, n, rgbaSize)
		}
	}
}

// orientedFile writes img as format with EXIF orientation o (JPEG, PNG or
// WebP; no EXIF for o 1).
func orientedFile(t *testing.T, format string, img image.Image, o int) []byte {
	t.Helper()
	b := img.Bounds()
	switch format {
	case "jpeg":
		j := jpegBytes(t, img)
		if o == 1 {
			return j
		}
		return withOrientation(j, o, false)
	case "png":
		p := pngBytes(t, img)
		if o == 1 {
			return p
		}
		return withPNGExif(p, exifTIFF(o, false), false)
	case "webp":
		wp := webpBytes(t, img.(*image.RGBA))
		if o == 1 {
			return wp
		}
		return withWebPExif(wp, b.Dx(), b.Dy(), exifTIFF(o, true), true)
	}
	t.Fatalf("no format %s", format)
	return nil
}

// PeakPixels counts twice the pixels of an image that turning upright
// copies, and once those of one turned in place or not at all; what it
// counts in place is what Decode turns in place.
func TestPeakPixels(t *testing.T) {
	const w, h = 12, 10
	q := quadrants(w, h)
	gray := image.NewGray(q.Bounds())
	draw.Draw(gray, gray.Bounds(), q, image.Point{}, draw.Src)
	nrgba := image.NewNRGBA(q.Bounds())
	draw.Draw(nrgba, nrgba.Bounds(), q, image.Point{}, draw.Src)
	nrgba.Pix[3] = 10 // translucent: an RGBA PNG
	pal := image.NewPaletted(q.Bounds(), palette.WebSafe)
	draw.Draw(pal, pal.Bounds(), q, image.Point{}, draw.Src)
	wide := image.NewRGBA64(q.Bounds())
	draw.Draw(wide, wide.Bounds(), q, image.Point{}, draw.Src)
	wide.Pix[0] = 1 // not 8-bit: a 16-bit PNG
	cases := []struct {
		name, format string
		img          image.Image
		inPlace      bool // Orient turns the decoded image in place (2..4)
		counted      bool // PeakPixels counts it in place (2..4)
	}{
		{"png rgb", "png", q, true, true},
		{"png gray", "png", gray, true, true},
		{"png rgba", "png", nrgba, true, true},
		{"png paletted", "png", pal, true, true},
		{"png 16-bit", "png", wide, true, true},
		{"jpeg ycbcr", "jpeg", q, false, false},
		{"jpeg gray", "jpeg", gray, true, true},
		// The header of the extended format (needed for EXIF) gives the
		// YCbCr model of a lossy WebP even when the image is lossless:
		// PeakPixels counts more than Decode holds, never less.
		{"webp lossless", "webp", q, true, false},
	}
	for _, c := range cases {
		for o := 1; o <= 8; o++ {
			data := orientedFile(t, c.format, c.img, o)
			want := int64(w * h)
			if o >= 5 || (o >= 2 && !c.counted) {
				want *= 2
			}
			if n, err := PeakPixels(data); err != nil || n != want {
				t.Errorf("%s orientation %d: PeakPixels = %d, %v; want %d", c.name, o, n, err, want)
			}
			f, err := sniff(data)
			if err != nil {
				t.Fatal(err)
			}
			decoded, err := f.decode(bytes.NewReader(data))
			if err != nil {
				t.Fatal(err)
			}
			if _, _, _, ok := layout(decoded); ok != c.inPlace {
				t.Errorf("%s decodes to %T: turned in place %v, the case says %v", c.name, decoded, ok, c.inPlace)
			}
		}
	}
	gif := gifBytes(t, pal)
	if n, err := PeakPixels(gif); err != nil || n != w*h {
		t.Errorf("gif: PeakPixels = %d, %v; want %d", n, err, w*h)
	}
	if _, err := PeakPixels([]byte("not an image")); err == nil {
		t.Error("PeakPixels of no image: no error")
	}
}
