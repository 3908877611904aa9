package imagefile

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"image"
	"image/color"
	"image/color/palette"
	"image/gif"
	"image/jpeg"
	"image/png"
	"strings"
	"testing"
)

func encodeWith(t testing.TB, img image.Image, enc func(*bytes.Buffer, image.Image) error) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := enc(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func pngBytes(t testing.TB, img image.Image) []byte {
	return encodeWith(t, img, func(b *bytes.Buffer, m image.Image) error { return png.Encode(b, m) })
}

func jpegBytes(t testing.TB, img image.Image) []byte {
	return encodeWith(t, img, func(b *bytes.Buffer, m image.Image) error { return jpeg.Encode(b, m, &jpeg.Options{Quality: 95}) })
}

func gifBytes(t testing.TB, frames ...*image.Paletted) []byte {
	g := &gif.GIF{Image: frames, Delay: make([]int, len(frames))}
	return encodeWith(t, nil, func(b *bytes.Buffer, _ image.Image) error { return gif.EncodeAll(b, g) })
}

// quadrants returns a w x h image: red, green on top; blue, white below.
func quadrants(w, h int) *image.RGBA {
	m := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			m.Set(x, y, quadrantColor(x, y, w, h))
		}
	}
	return m
}

func quadrantColor(x, y, w, h int) color.RGBA {
	switch {
	case y < h/2 && x < w/2:
		return color.RGBA{255, 0, 0, 255}
	case y < h/2:
		return color.RGBA{0, 255, 0, 255}
	case x < w/2:
		return color.RGBA{0, 0, 255, 255}
	}
	return color.RGBA{255, 255, 255, 255}
}

// exifTIFF returns a TIFF structure (big- or little-endian) whose IFD0
// holds orientation o.
func exifTIFF(o int, little bool) []byte {
	var bo binary.ByteOrder = binary.BigEndian
	tiff := []byte("MM\x00\x2a\x00\x00\x00\x08")
	if little {
		bo = binary.LittleEndian
		tiff = []byte("II\x2a\x00\x08\x00\x00\x00")
	}
	ifd := make([]byte, 2+12+4)
	bo.PutUint16(ifd[0:], 1)
	bo.PutUint16(ifd[2:], 0x0112)
	bo.PutUint16(ifd[4:], 3)
	bo.PutUint32(ifd[6:], 1)
	bo.PutUint16(ifd[10:], uint16(o))
	return append(tiff, ifd...)
}

// withOrientation splices an Exif APP1 segment carrying orientation o
// (big- or little-endian TIFF) right after the SOI marker of a JPEG.
func withOrientation(jpg []byte, o int, little bool) []byte {
	payload := append([]byte("Exif\x00\x00"), exifTIFF(o, little)...)
	seg := []byte{0xff, 0xe1, 0, 0}
	binary.BigEndian.PutUint16(seg[2:], uint16(len(payload)+2))
	seg = append(seg, payload...)
	out := append([]byte{}, jpg[:2]...)
	return append(append(out, seg...), jpg[2:]...)
}

// pngChunk returns a PNG chunk: length, type, data and a correct CRC.
func pngChunk(typ string, data []byte) []byte {
	c := binary.BigEndian.AppendUint32(nil, uint32(len(data)))
	c = append(append(c, typ...), data...)
	return binary.BigEndian.AppendUint32(c, crc32.ChecksumIEEE(c[4:]))
}

// withPNGExif splices an eXIf chunk holding payload into a PNG made by
// image/png: right after IHDR, as the specification asks, or, when late,
// just before IEND (after the image data).
func withPNGExif(p, payload []byte, late bool) []byte {
	at := 8 + 25 // signature and IHDR
	if late {
		at = len(p) - 12 // IEND
	}
	out := append([]byte{}, p[:at]...)
	return append(append(out, pngChunk("eXIf", payload)...), p[at:]...)
}

// webpBytes writes img, whose channels are all 0 or 255 and which is
// opaque, as a simple-format lossless WebP (a VP8L chunk). The bitstream
// has no transforms and no colour cache; each channel has a simple prefix
// code of the symbols 0 and 255 (one bit a pixel), alpha the one symbol 255.
func webpBytes(tb testing.TB, img *image.RGBA) []byte {
	tb.Helper()
	var bits []bool
	put := func(v uint32, n int) {
		for i := range n {
			bits = append(bits, v>>i&1 != 0)
		}
	}
	b := img.Bounds()
	put(0x2f, 8)
	put(uint32(b.Dx()-1), 14)
	put(uint32(b.Dy()-1), 14)
	put(0, 1)     // no alpha
	put(0, 3)     // version
	put(0, 1)     // no transform
	put(0, 1)     // no colour cache
	put(0, 1)     // no meta prefix codes
	for range 3 { // green, red, blue: two symbols, 0 (1 bit) then 255
		put(1, 1)
		put(1, 1)
		put(0, 1)
		put(0, 1)
		put(255, 8)
	}
	put(1, 1) // alpha: one symbol, 255 (8 bits)
	put(0, 1)
	put(1, 1)
	put(255, 8)
	put(1, 1) // distance: one symbol, 0
	put(0, 1)
	put(0, 1)
	put(0, 1)
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			c := img.RGBAAt(x, y)
			for _, v := range []uint8{c.G, c.R, c.B} {
				if v != 0 && v != 255 || c.A != 255 {
					tb.Fatalf("webpBytes: pixel %v is not opaque 0/255", c)
				}
				put(uint32(v&1), 1)
			}
		}
	}
	vp8l := make([]byte, (len(bits)+7)/8)
	for i, bit := range bits {
		if bit {
			vp8l[i/8] |= 1 << (i % 8)
		}
	}
	return riffWebP(webpChunk("VP8L", vp8l))
}

// webpChunk returns a RIFF chunk: type, little-endian length, data and
// the padding to an even size.
func webpChunk(typ string, data []byte) []byte {
	c := binary.LittleEndian.AppendUint32([]byte(typ), uint32(len(data)))
	c = append(c, data...)
	if len(data)%2 == 1 {
		c = append(c, 0)
	}
	return c
}

// riffWebP wraps chunks in the RIFF WEBP header.
func riffWebP(chunks ...[]byte) []byte {
	body := []byte("WEBP")
	for _, c := range chunks {
		body = append(body, c...)
	}
	return append(binary.LittleEndian.AppendUint32([]byte("RIFF"), uint32(len(body))), body...)
}

// withWebPExif turns a simple-format WebP of a w x h image into the
// extended format: a VP8X chunk (with the Exif flag when flag is set),
// the image's chunk, then an EXIF chunk holding payload.
func withWebPExif(webp []byte, w, h int, payload []byte, flag bool) []byte {
	vp8x := make([]byte, 10)
	if flag {
		vp8x[0] = 1 << 3
	}
	vp8x[4], vp8x[5], vp8x[6] = byte(w-1), byte((w-1)>>8), byte((w-1)>>16)
	vp8x[7], vp8x[8], vp8x[9] = byte(h-1), byte((h-1)>>8), byte((h-1)>>16)
	return riffWebP(webpChunk("VP8X", vp8x), webp[12:], webpChunk("EXIF", payload))
}

func near(a, b color.Color) bool {
	r1, g1, b1, _ := a.RGBA()
	r2, g2, b2, _ := b.RGBA()
	d := func(x, y uint32) bool { return x > y+0x3000 || y > x+0x3000 }
	return !d(r1, r2) && !d(g1, g2) && !d(b1, b2)
}

func TestOrientation(t *testing.T) {
	const w, h = 32, 16
	plain := jpegBytes(t, quadrants(w, h))
	for o := 1; o <= 8; o++ {
		for _, little := range []bool{false, true} {
			checkUpright(t, fmt.Sprintf("jpeg orientation %d", o), withOrientation(plain, o, little), o, w, h)
		}
	}
}

// checkUpright decodes data, a w x h quadrants image stored with
// orientation o, and checks that it comes out upright: the orientation
// reported, the size of the upright image, and its corners.
func checkUpright(t *testing.T, name string, data []byte, o, w, h int) {
	t.Helper()
	img, info, err := Decode(bytes.NewReader(data), Limits{})
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	dw, dh := w, h
	if o >= 5 {
		dw, dh = h, w
	}
	if info.Orientation != o || info.Width != dw || info.Height != dh || img.Bounds() != image.Rect(0, 0, dw, dh) {
		t.Fatalf("%s: info %+v, bounds %v", name, info, img.Bounds())
	}
	for _, p := range []image.Point{{2, 2}, {dw - 3, 2}, {2, dh - 3}, {dw - 3, dh - 3}} {
		sx, sy := sourceXY(o, p.X, p.Y, w, h)
		if want := quadrantColor(sx, sy, w, h); !near(img.At(p.X, p.Y), want) {
			t.Errorf("%s: pixel %v is %v, want %v", name, p, img.At(p.X, p.Y), want)
		}
	}
}

// PNG carries EXIF in an eXIf chunk (a TIFF structure, no "Exif\0\0");
// WebP in the EXIF chunk of its extended format, with or without the
// prefix. Both are turned upright like JPEG, in all 8 orientations.
func TestOrientationPNGAndWebP(t *testing.T) {
	const w, h = 32, 16
	q := quadrants(w, h)
	plainPNG, plainWebP := pngBytes(t, q), webpBytes(t, q)
	for o := 1; o <= 8; o++ {
		for _, little := range []bool{false, true} {
			tiff := exifTIFF(o, little)
			prefixed := append([]byte("Exif\x00\x00"), tiff...)
			checkUpright(t, fmt.Sprintf("png orientation %d", o), withPNGExif(plainPNG, tiff, false), o, w, h)
			checkUpright(t, fmt.Sprintf("png orientation %d, Exif prefix", o), withPNGExif(plainPNG, prefixed, false), o, w, h)
			checkUpright(t, fmt.Sprintf("webp orientation %d", o), withWebPExif(plainWebP, w, h, tiff, true), o, w, h)
			checkUpright(t, fmt.Sprintf("webp orientation %d, Exif prefix", o), withWebPExif(plainWebP, w, h, prefixed, true), o, w, h)
		}
	}
}

// EXIF that browsers do not honour is not honoured here either: an eXIf
// chunk after the PNG's image data, and a WebP EXIF chunk without the VP8X
// Exif flag. Neither is an EXIF chunk that is cut short, carries no
// orientation or fails its CRC (which the PNG decoder refuses anyway).
func TestOrientationIgnored(t *testing.T) {
	const w, h = 32, 16
	q := quadrants(w, h)
	plainPNG, plainWebP := pngBytes(t, q), webpBytes(t, q)
	tiff := exifTIFF(6, false)
	badCRC := withPNGExif(plainPNG, tiff, false)
	badCRC[8+25+8+len(tiff)]++ // the eXIf CRC, after signature, IHDR and the chunk's head and data
	noOrientation := exifTIFF(6, false)
	noOrientation[10]++ // tag 0x0113
	cases := map[string][]byte{
		"png eXIf after IDAT":      withPNGExif(plainPNG, tiff, true),
		"png eXIf without the tag": withPNGExif(plainPNG, noOrientation, false),
		"png eXIf cut short":       withPNGExif(plainPNG, tiff[:len(tiff)-6], false),
		"webp without Exif flag":   withWebPExif(plainWebP, w, h, tiff, false),
		"webp EXIF cut short":      withWebPExif(plainWebP, w, h, tiff[:12], true),
		"webp simple format":       plainWebP,
	}
	for name, data := range cases {
		checkUpright(t, name, data, 1, w, h)
	}
	if o := pngOrientation(badCRC); o != 1 {
		t.Errorf("png with a bad eXIf CRC: orientation %d, want 1", o)
	}
	if _, _, err := Decode(bytes.NewReader(badCRC), Limits{}); !errors.Is(err, ErrCorrupt) {
		t.Errorf("png with a bad eXIf CRC: error %v, want ErrCorrupt", err)
	}
	if o := pngOrientation(withPNGExif(plainPNG, tiff, false)[:40]); o != 1 {
		t.Errorf("png cut inside its eXIf chunk: orientation %d, want 1", o)
	}
}

func TestOrientationUprightCorners(t *testing.T) {
	// Orientation 6: the stored image must turn 90 degrees clockwise, so
	// the stored bottom-left (blue) becomes the top-left.
	img, _, err := Decode(bytes.NewReader(withOrientation(jpegBytes(t, quadrants(32, 16)), 6, false)), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if !near(img.At(1, 1), color.RGBA{0, 0, 255, 255}) || !near(img.At(14, 1), color.RGBA{255, 0, 0, 255}) {
		t.Errorf("orientation 6 corners: %v %v", img.At(1, 1), img.At(14, 1))
	}
}

func TestDecodeFormats(t *testing.T) {
	src := quadrants(8, 6)
	pal := image.NewPaletted(src.Bounds(), palette.Plan9)
	copy(pal.Pix, bytes.Repeat([]byte{3}, len(pal.Pix)))
	second := image.NewPaletted(image.Rect(0, 0, 8, 6), palette.Plan9)
	cases := map[string][]byte{"png": pngBytes(t, src), "jpeg": jpegBytes(t, src), "gif": gifBytes(t, pal, second)}
	for want, data := range cases {
		img, info, err := Decode(bytes.NewReader(data), Limits{})
		if err != nil {
			t.Fatalf("%s: %v", want, err)
		}
		if info.Format != want || info.ContentType != "image/"+want || info.Width != 8 || info.Height != 6 {
			t.Errorf("%s: info %+v", want, info)
		}
		if want == "gif" && img.(*image.Paletted).Pix[0] != 3 {
			t.Error("gif: not the first frame")
		}
	}
}

func TestDecodeWebP(t *testing.T) {
	// A 1x1 lossless WebP.
	data := []byte("RIFF\x1a\x00\x00\x00WEBPVP8L\x0d\x00\x00\x00\x2f\x00\x00\x00\x10\x07\x10\x11\x11\x88\x88\xfe\x07\x00")
	_, info, err := Decode(bytes.NewReader(data), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if info.Format != "webp" || info.Width != 1 || info.Height != 1 {
		t.Errorf("info %+v", info)
	}
}

// TestDecode16BitPNG checks that 16-bit PNGs decode to 16-bit images with
// every value kept, low byte included: the dither engine dithers images
// of the 16-bit colour models at 16 bits.
func TestDecode16BitPNG(t *testing.T) {
	nrgba := image.NewNRGBA64(image.Rect(0, 0, 3, 2)) // transparent pixels: PNG colour type 6
	nrgba.SetNRGBA64(1, 1, color.NRGBA64{0xffff, 0x80ff, 0x0101, 0xffff})
	opaque := image.NewNRGBA64(image.Rect(0, 0, 3, 2)) // colour type 2, decoded premultiplied
	for i := range opaque.Pix {
		opaque.Pix[i] = 0xff
	}
	opaque.SetNRGBA64(1, 1, color.NRGBA64{0x1234, 0x80ff, 0xfedc, 0xffff})
	gray := image.NewGray16(image.Rect(0, 0, 3, 2))
	gray.SetGray16(1, 1, color.Gray16{0x80ff})
	for _, m := range []image.Image{nrgba, opaque, gray} {
		img, _, err := Decode(bytes.NewReader(pngBytes(t, m)), Limits{})
		if err != nil {
			t.Fatal(err)
		}
		switch img.ColorModel() {
		case color.NRGBA64Model, color.RGBA64Model, color.Gray16Model:
		default:
			t.Errorf("%T: decoded as %T, not a 16-bit image", m, img)
		}
		for y := 0; y < 2; y++ {
			for x := 0; x < 3; x++ {
				if got, want := color.NRGBA64Model.Convert(img.At(x, y)), color.NRGBA64Model.Convert(m.At(x, y)); got != want {
					t.Errorf("%T: pixel (%d,%d) is %v, want %v", m, x, y, got, want)
				}
			}
		}
	}
}

// Turning an image upright keeps a 16-bit PNG's depth and its
// non-premultiplied alpha.
func TestDecode16BitPNGOriented(t *testing.T) {
	m := image.NewNRGBA64(image.Rect(0, 0, 3, 2))
	want := color.NRGBA64{0xffff, 0x8000, 0x0101, 0x7fff}
	m.SetNRGBA64(0, 1, want) // bottom-left, which orientation 6 puts top-left
	img, info, err := Decode(bytes.NewReader(withPNGExif(pngBytes(t, m), exifTIFF(6, true), false)), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	n, ok := img.(*image.NRGBA64)
	if !ok || info.Width != 2 || info.Height != 3 {
		t.Fatalf("decoded %T, %dx%d; want *image.NRGBA64, 2x3", img, info.Width, info.Height)
	}
	if got := n.NRGBA64At(0, 0); got != want {
		t.Errorf("top-left %v, want %v", got, want)
	}
}

// forgedPNG returns a PNG signature and IHDR claiming w x h pixels, with
// a valid CRC, and no image data.
func forgedPNG(w, h uint32) []byte {
	ihdr := make([]byte, 17)
	copy(ihdr, "IHDR")
	binary.BigEndian.PutUint32(ihdr[4:], w)
	binary.BigEndian.PutUint32(ihdr[8:], h)
	ihdr[12], ihdr[13] = 8, 6 // 8-bit RGBA
	out := []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\x0d")
	out = append(out, ihdr...)
	return binary.BigEndian.AppendUint32(out, crc32.ChecksumIEEE(ihdr))
}

func TestDecodeErrors(t *testing.T) {
	good := pngBytes(t, quadrants(16, 16))
	cases := []struct {
		name   string
		data   []byte
		limits Limits
		want   error
	}{
		{"too large", good, Limits{MaxBytes: int64(len(good) - 1)}, ErrTooLarge},
		{"exactly the cap", good, Limits{MaxBytes: int64(len(good))}, nil},
		{"huge header", forgedPNG(100000, 100000), Limits{}, ErrTooManyPixels},
		{"over pixel cap", good, Limits{MaxPixels: 255}, ErrTooManyPixels},
		{"bmp", []byte("BM\x00\x00\x00\x00\x00\x00\x00\x00"), Limits{}, ErrUnsupportedFormat},
		{"text", []byte("hello, world"), Limits{}, ErrUnsupportedFormat},
		{"empty", nil, Limits{}, ErrUnsupportedFormat},
		{"truncated png", good[:len(good)/2], Limits{}, ErrCorrupt},
		{"truncated header", good[:20], Limits{}, ErrCorrupt},
		{"zero size", forgedPNG(0, 5), Limits{}, ErrCorrupt},
		{"truncated jpeg", jpegBytes(t, quadrants(16, 16))[:100], Limits{}, ErrCorrupt},
	}
	for _, c := range cases {
		_, _, err := Decode(bytes.NewReader(c.data), c.limits)
		if !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
			t.Errorf("%s: error %v, want %v", c.name, err, c.want)
		}
	}
}

func TestEncodePNG(t *testing.T) {
	p := image.NewPaletted(image.Rect(0, 0, 4, 4), color.Palette{color.Black, color.White})
	p.Pix[5] = 1
	var b bytes.Buffer
	if err := EncodePNG(&b, p); err != nil {
		t.Fatal(err)
	}
	back, err := png.Decode(&b)
	if err != nil {
		t.Fatal(err)
	}
	if bp, ok := back.(*image.Paletted); !ok || bp.Pix[5] != 1 || len(bp.Palette) != 2 {
		t.Errorf("round trip gave %T", back)
	}
	if err := EncodePNG(failWriter{}, p); err == nil || !strings.Contains(err.Error(), "png") {
		t.Errorf("write error not reported: %v", err)
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestOrientOtherTypes(t *testing.T) {
	cmyk := image.NewCMYK(image.Rect(0, 0, 3, 2))
	cmyk.Set(0, 1, color.CMYK{0, 255, 255, 0}) // red, bottom-left
	out := Orient(cmyk, 6)                     // bottom-left goes to top-left
	if out.Bounds() != image.Rect(0, 0, 2, 3) || !near(out.At(0, 0), color.RGBA{255, 0, 0, 255}) {
		t.Errorf("CMYK orientation 6: %v at (0,0), bounds %v", out.At(0, 0), out.Bounds())
	}
	g := image.NewGray(image.Rect(0, 0, 3, 2))
	g.SetGray(2, 0, color.Gray{200}) // top-right
	if og := Orient(g, 8).(*image.Gray); og.GrayAt(0, 0).Y != 200 {
		t.Errorf("Gray orientation 8: top-left is %v", og.GrayAt(0, 0))
	}
	nrgba := image.NewNRGBA(image.Rect(0, 0, 3, 2))
	nrgba.SetNRGBA(2, 1, color.NRGBA{10, 20, 30, 40}) // bottom-right
	if on, ok := Orient(nrgba, 3).(*image.NRGBA); !ok || on.NRGBAAt(0, 0) != (color.NRGBA{10, 20, 30, 40}) {
		t.Errorf("NRGBA orientation 3: %T, top-left %v", Orient(nrgba, 3), Orient(nrgba, 3).At(0, 0))
	}
	pal := image.NewPaletted(image.Rect(0, 0, 3, 2), palette.Plan9)
	pal.Pix[pal.PixOffset(0, 1)] = 7 // bottom-left
	if op, ok := Orient(pal, 6).(*image.Paletted); !ok || op.ColorIndexAt(0, 0) != 7 || len(op.Palette) != len(palette.Plan9) {
		t.Errorf("Paletted orientation 6: %T", Orient(pal, 6))
	}
	if Orient(g, 1) != image.Image(g) || Orient(g, 9) != image.Image(g) {
		t.Error("orientation 1 and unknown values must return the image unchanged")
	}
}

// A GIF whose first frame covers part of its logical screen decodes to the
// whole screen, as browsers show it: the frame at its offset, transparent
// elsewhere.
func TestDecodeGIFFrameOnScreen(t *testing.T) {
	pal := color.Palette{color.NRGBA{200, 10, 10, 255}, color.NRGBA{0, 0, 0, 0}}
	frame := image.NewPaletted(image.Rect(5, 4, 10, 10), pal)
	g := &gif.GIF{Image: []*image.Paletted{frame}, Delay: []int{0},
		Config: image.Config{ColorModel: pal, Width: 12, Height: 10}}
	var b bytes.Buffer
	if err := gif.EncodeAll(&b, g); err != nil {
		t.Fatal(err)
	}
	img, info, err := Decode(&b, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if img.Bounds() != image.Rect(0, 0, 12, 10) || info.Width != 12 || info.Height != 10 {
		t.Fatalf("decoded %v (info %dx%d), want the 12x10 screen", img.Bounds(), info.Width, info.Height)
	}
	if _, _, _, a := img.At(1, 1).RGBA(); a != 0 {
		t.Errorf("outside the frame: alpha %d, want transparent", a)
	}
	if r, _, _, a := img.At(7, 6).RGBA(); r>>8 != 200 || a != 0xffff {
		t.Errorf("inside the frame: %v, want the frame's red", img.At(7, 6))
	}
}

// sourceXY, the tests' reference, maps a pixel of the upright image to the stored image of size
// w x h with EXIF orientation o.
func sourceXY(o, x, y, w, h int) (int, int) {
	switch o {
	case 2: // mirrored horizontally
		return w - 1 - x, y
	case 3: // rotated 180
		return w - 1 - x, h - 1 - y
	case 4: // mirrored vertically
		return x, h - 1 - y
	case 5: // transposed
		return y, x
	case 6: // needs 90 degrees clockwise
		return y, h - 1 - x
	case 7: // transversed
		return w - 1 - y, h - 1 - x
	case 8: // needs 90 degrees anticlockwise
		return w - 1 - y, x
	}
	return x, y
}
