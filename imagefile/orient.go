package imagefile

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	"image/draw"
)

// jpegOrientation returns the EXIF orientation (1..8) of a JPEG file, or
// 1 when it has none or it cannot be read. It walks the marker segments
// before the image data and reads tag 0x0112 of IFD0 of an Exif APP1.
func jpegOrientation(data []byte) int {
	i := 2 // after SOI
	for i+4 <= len(data) {
		if data[i] != 0xff {
			return 1
		}
		marker := data[i+1]
		if marker == 0xff { // fill byte
			i++
			continue
		}
		if marker == 0xda || marker == 0xd9 { // start of scan, end of image
			return 1
		}
		n := int(binary.BigEndian.Uint16(data[i+2:]))
		if n < 2 || i+2+n > len(data) {
			return 1
		}
		seg := data[i+4 : i+2+n]
		if marker == 0xe1 && len(seg) >= 6 && string(seg[:6]) == "Exif\x00\x00" {
			if o := tiffOrientation(seg[6:]); o != 0 {
				return o
			}
		}
		i += 2 + n
	}
	return 1
}

// pngOrientation returns the EXIF orientation (1..8) of a PNG file from
// its eXIf chunk, or 1 when it has none or it cannot be read.
//
// Only an eXIf chunk before the first IDAT counts. The PNG specification
// (third edition) puts it there, and browsers ignore one that comes later:
// Chromium reads eXIf when it reaches the first IDAT, Safari honours it
// only before the image data, Firefox ignores eXIf altogether, and the
// web-platform test "late EXIF data is ignored" expects a late one to be
// ignored. Honouring a late eXIf would turn an image that its owner sees
// upright in a browser. The walk stops at the first IDAT, so it reads no
// more than the chunks ahead of the image data; a chunk whose length runs
// past the data, or an eXIf whose CRC does not match, ends it with 1.
func pngOrientation(data []byte) int {
	i := 8 // after the signature
	for i+12 <= len(data) {
		n := int64(binary.BigEndian.Uint32(data[i:]))
		if n > int64(len(data)-i-12) {
			return 1
		}
		end := i + 8 + int(n)
		switch string(data[i+4 : i+8]) {
		case "IDAT", "IEND":
			return 1
		case "eXIf": // at most one is allowed; the first decides
			if crc32.ChecksumIEEE(data[i+4:end]) != binary.BigEndian.Uint32(data[end:]) {
				return 1
			}
			return exifOrientation(data[i+8 : end])
		}
		i = end + 4
	}
	return 1
}

// webpOrientation returns the EXIF orientation (1..8) of a WebP file from
// its EXIF chunk, or 1 when it has none or it cannot be read. Only the
// extended format carries metadata: the first chunk must be VP8X with its
// Exif flag set. The EXIF chunk usually follows the image data, so all the
// chunks within the RIFF size (and the data) are walked; a chunk whose
// length runs past them ends the walk with 1.
func webpOrientation(data []byte) int {
	const exifFlag = 1 << 3
	if len(data) < 30 || string(data[12:16]) != "VP8X" || binary.LittleEndian.Uint32(data[16:]) != 10 || data[20]&exifFlag == 0 {
		return 1
	}
	end := len(data)
	if n := int64(binary.LittleEndian.Uint32(data[4:])) + 8; n < int64(end) {
		end = int(n)
	}
	for i := 12; i+8 <= end; {
		n := int64(binary.LittleEndian.Uint32(data[i+4:]))
		if n > int64(end-i-8) {
			return 1
		}
		if string(data[i:i+4]) == "EXIF" {
			return exifOrientation(data[i+8 : i+8+int(n)])
		}
		i += 8 + int(n) + int(n&1) // chunks are padded to an even size
	}
	return 1
}

// exifOrientation reads the orientation of an Exif payload that is a TIFF
// structure, with or without the "Exif\0\0" prefix that JPEG's APP1 needs
// and some PNG and WebP writers add, or returns 1.
func exifOrientation(payload []byte) int {
	payload = bytes.TrimPrefix(payload, []byte("Exif\x00\x00"))
	if o := tiffOrientation(payload); o != 0 {
		return o
	}
	return 1
}

// tiffOrientation reads the orientation tag of IFD0 of a TIFF header, or
// returns 0.
func tiffOrientation(t []byte) int {
	if len(t) < 8 {
		return 0
	}
	var bo binary.ByteOrder
	switch string(t[:2]) {
	case "II":
		bo = binary.LittleEndian
	case "MM":
		bo = binary.BigEndian
	default:
		return 0
	}
	off := int64(bo.Uint32(t[4:]))
	if off < 8 || off+2 > int64(len(t)) {
		return 0
	}
	count := int64(bo.Uint16(t[off:]))
	for e := off + 2; e+12 <= int64(len(t)) && count > 0; e, count = e+12, count-1 {
		if bo.Uint16(t[e:]) != 0x0112 {
			continue
		}
		if typ := bo.Uint16(t[e+2:]); typ != 3 { // SHORT
			return 0
		}
		if v := int(bo.Uint16(t[e+8:])); v >= 1 && v <= 8 {
			return v
		}
		return 0
	}
	return 0
}

// Orient returns img transformed so that an image with EXIF orientation o
// (1..8) displays upright; orientation 1 and unknown values return img.
// Gray, Gray16, RGBA, NRGBA, RGBA64, NRGBA64 and Paletted images keep their
// type (and so their depth and alpha as stored); others become *image.RGBA.
// The result's bounds start at (0, 0).
//
// Orientations 2, 3 and 4 (the mirrors and the half turn) keep the size:
// an image of one of the types kept is turned in place, its pixels within
// its bounds rearranged (none outside them touched) and shared by the
// result, so that no second pixel buffer is held. Orientations 5 to 8
// swap width and height and copy the pixels into a new image. An image of
// another type is converted to a new RGBA image, a row at a time as it is
// turned, so that it too holds no third buffer. OrientCopies tells which
// orientations copy.
func Orient(img image.Image, o int) image.Image {
	if o <= 1 || o > 8 {
		return img
	}
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	r := image.Rect(0, 0, w, h)
	if o >= 5 {
		r = image.Rect(0, 0, h, w)
	}
	if pix, stride, bpp, ok := layout(img); ok {
		if o <= 4 {
			flip(pix, stride, bpp, w, h, o)
			return like(img, pix, stride, r)
		}
		out := make([]byte, r.Dx()*r.Dy()*bpp)
		for y := range h {
			turnRow(out, r.Dx()*bpp, pix[y*stride:], bpp, o, y, w, h)
		}
		return like(img, out, r.Dx()*bpp, r)
	}
	out := image.NewRGBA(r)
	if o <= 4 {
		draw.Draw(out, out.Bounds(), img, b.Min, draw.Src)
		flip(out.Pix, out.Stride, 4, w, h, o)
		return out
	}
	row := image.NewRGBA(image.Rect(0, 0, w, 1))
	for y := range h {
		draw.Draw(row, row.Bounds(), img, image.Pt(b.Min.X, b.Min.Y+y), draw.Src)
		turnRow(out.Pix, out.Stride, row.Pix, 4, o, y, w, h)
	}
	return out
}

// OrientCopies reports whether Orient copies the decoded pixels, holding a
// second buffer as large as the image (or larger) beside them, to turn an
// image of EXIF orientation o whose header gives colour model m: for a
// quarter turn or a transposition (5..8), which swap width and height, and
// for any orientation but 1 of a type Orient cannot turn in place (JPEG's
// YCbCr and CMYK, lossy WebP), which it converts to RGBA. A model it does
// not know counts as a copy.
func OrientCopies(o int, m color.Model) bool {
	if o <= 1 || o > 8 {
		return false
	}
	if o >= 5 {
		return true
	}
	switch m.(type) {
	case color.Palette:
		return false
	}
	switch m {
	case color.GrayModel, color.Gray16Model, color.RGBAModel, color.NRGBAModel, color.RGBA64Model, color.NRGBA64Model:
		return false
	}
	return true
}

// layout returns the pixel bytes of an image of a type Orient keeps, from
// its top-left pixel on, its stride and its bytes a pixel, or false.
func layout(img image.Image) (pix []byte, stride, bpp int, ok bool) {
	b := img.Bounds()
	at := func(p []byte, off int) []byte {
		if b.Empty() {
			return nil
		}
		return p[off:]
	}
	switch m := img.(type) {
	case *image.Gray:
		return at(m.Pix, m.PixOffset(b.Min.X, b.Min.Y)), m.Stride, 1, true
	case *image.Gray16:
		return at(m.Pix, m.PixOffset(b.Min.X, b.Min.Y)), m.Stride, 2, true
	case *image.RGBA:
		return at(m.Pix, m.PixOffset(b.Min.X, b.Min.Y)), m.Stride, 4, true
	case *image.NRGBA:
		return at(m.Pix, m.PixOffset(b.Min.X, b.Min.Y)), m.Stride, 4, true
	case *image.RGBA64:
		return at(m.Pix, m.PixOffset(b.Min.X, b.Min.Y)), m.Stride, 8, true
	case *image.NRGBA64:
		return at(m.Pix, m.PixOffset(b.Min.X, b.Min.Y)), m.Stride, 8, true
	case *image.Paletted:
		return at(m.Pix, m.PixOffset(b.Min.X, b.Min.Y)), m.Stride, 1, true
	}
	return nil, 0, 0, false
}

// like returns an image of img's type (one that layout knows) with bounds
// r over pix.
func like(img image.Image, pix []byte, stride int, r image.Rectangle) image.Image {
	switch m := img.(type) {
	case *image.Gray:
		return &image.Gray{Pix: pix, Stride: stride, Rect: r}
	case *image.Gray16:
		return &image.Gray16{Pix: pix, Stride: stride, Rect: r}
	case *image.RGBA:
		return &image.RGBA{Pix: pix, Stride: stride, Rect: r}
	case *image.NRGBA:
		return &image.NRGBA{Pix: pix, Stride: stride, Rect: r}
	case *image.RGBA64:
		return &image.RGBA64{Pix: pix, Stride: stride, Rect: r}
	case *image.NRGBA64:
		return &image.NRGBA64{Pix: pix, Stride: stride, Rect: r}
	case *image.Paletted:
		return &image.Paletted{Pix: pix, Stride: stride, Rect: r, Palette: m.Palette}
	}
	panic("imagefile: like called with an image of another type")
}

// flip applies orientation o (2, 3 or 4) in place to the w x h pixels of
// bpp bytes in pix: 2 mirrors each row, 4 swaps the rows top to bottom,
// and 3, the half turn, does both.
func flip(pix []byte, stride, bpp, w, h, o int) {
	if o == 3 || o == 4 {
		for y := range h / 2 {
			a, b := pix[y*stride:][:w*bpp], pix[(h-1-y)*stride:][:w*bpp]
			for i := range a {
				a[i], b[i] = b[i], a[i]
			}
		}
	}
	if o == 2 || o == 3 {
		for y := range h {
			row := pix[y*stride:][:w*bpp]
			for l, r := 0, (w-1)*bpp; l < r; l, r = l+bpp, r-bpp {
				for i := range bpp {
					row[l+i], row[r+i] = row[r+i], row[l+i]
				}
			}
		}
	}
}

// turnRow copies row y of a stored image of w x h pixels of bpp bytes
// (src, from its first pixel) to where orientation o (5..8) puts its
// pixels in the upright image out.
func turnRow(out []byte, outStride int, src []byte, bpp, o, y, w, h int) {
	for x := range w {
		dx, dy := uprightXY(o, x, y, w, h)
		copy(out[dy*outStride+dx*bpp:][:bpp], src[x*bpp:])
	}
}

// uprightXY maps a pixel of the stored image of size w x h with EXIF
// orientation o (5..8) to the upright image.
func uprightXY(o, x, y, w, h int) (int, int) {
	switch o {
	case 5:
		return y, x
	case 6:
		return h - 1 - y, x
	case 7:
		return h - 1 - y, w - 1 - x
	case 8:
		return y, w - 1 - x
	}
	return x, y
}
