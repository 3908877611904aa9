package imagefile

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"image"
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
	turn := func(dst []byte, dstStride int, src []byte, srcStride, offset, bpp int) {
		remap(dst, dstStride, src[offset:], srcStride, bpp, r.Dx(), r.Dy(), func(x, y int) (int, int) { return sourceXY(o, x, y, w, h) })
	}
	switch m := img.(type) {
	case *image.Gray:
		out := image.NewGray(r)
		turn(out.Pix, out.Stride, m.Pix, m.Stride, m.PixOffset(b.Min.X, b.Min.Y), 1)
		return out
	case *image.Gray16:
		out := image.NewGray16(r)
		turn(out.Pix, out.Stride, m.Pix, m.Stride, m.PixOffset(b.Min.X, b.Min.Y), 2)
		return out
	case *image.RGBA:
		out := image.NewRGBA(r)
		turn(out.Pix, out.Stride, m.Pix, m.Stride, m.PixOffset(b.Min.X, b.Min.Y), 4)
		return out
	case *image.NRGBA:
		out := image.NewNRGBA(r)
		turn(out.Pix, out.Stride, m.Pix, m.Stride, m.PixOffset(b.Min.X, b.Min.Y), 4)
		return out
	case *image.RGBA64:
		out := image.NewRGBA64(r)
		turn(out.Pix, out.Stride, m.Pix, m.Stride, m.PixOffset(b.Min.X, b.Min.Y), 8)
		return out
	case *image.NRGBA64:
		out := image.NewNRGBA64(r)
		turn(out.Pix, out.Stride, m.Pix, m.Stride, m.PixOffset(b.Min.X, b.Min.Y), 8)
		return out
	case *image.Paletted:
		out := image.NewPaletted(r, m.Palette)
		turn(out.Pix, out.Stride, m.Pix, m.Stride, m.PixOffset(b.Min.X, b.Min.Y), 1)
		return out
	}
	rgba := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.Draw(rgba, rgba.Bounds(), img, b.Min, draw.Src)
	return Orient(rgba, o)
}

// sourceXY maps a pixel of the upright image to the stored image of size
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

// remap copies pixels of bpp bytes from src to dst through the map f.
func remap(dst []byte, dstStride int, src []byte, srcStride, bpp, dw, dh int, f func(x, y int) (int, int)) {
	for y := 0; y < dh; y++ {
		row := dst[y*dstStride:]
		for x := 0; x < dw; x++ {
			sx, sy := f(x, y)
			copy(row[x*bpp:x*bpp+bpp], src[sy*srcStride+sx*bpp:])
		}
	}
}
