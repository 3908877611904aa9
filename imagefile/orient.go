package imagefile

import (
	"encoding/binary"
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
// The result is an *image.Gray for grey input, else an *image.RGBA.
func Orient(img image.Image, o int) image.Image {
	if o <= 1 || o > 8 {
		return img
	}
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	dw, dh := w, h
	if o >= 5 {
		dw, dh = h, w
	}
	src := func(x, y int) (int, int) { return sourceXY(o, x, y, w, h) }
	if g, ok := img.(*image.Gray); ok {
		out := image.NewGray(image.Rect(0, 0, dw, dh))
		remap(out.Pix, out.Stride, g.Pix[g.PixOffset(b.Min.X, b.Min.Y):], g.Stride, 1, dw, dh, src)
		return out
	}
	rgba, ok := img.(*image.RGBA)
	if !ok {
		rgba = image.NewRGBA(image.Rect(0, 0, w, h))
		draw.Draw(rgba, rgba.Bounds(), img, b.Min, draw.Src)
	}
	out := image.NewRGBA(image.Rect(0, 0, dw, dh))
	off := rgba.PixOffset(rgba.Rect.Min.X, rgba.Rect.Min.Y)
	remap(out.Pix, out.Stride, rgba.Pix[off:], rgba.Stride, 4, dw, dh, src)
	return out
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
