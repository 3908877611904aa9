package dither

import (
	"encoding/binary"
	"image"
	"image/color"
)

// A source with 16 bits a channel is dithered at 16 bits: its rows are read
// as 16-bit straight RGBA (rowLoader16) and the working values come from
// them through space.wide, so that a value between two 8-bit steps keeps
// its place. Alpha is still decided at 8 bits (the output has 8-bit alpha),
// from the row narrowed by narrowRow: its top byte, as color.NRGBAModel
// takes it.

// rowLoader16 returns row y of a 16-bit image as non-premultiplied RGBA,
// 4 values a pixel, in buf.
type rowLoader16 func(y int, buf []uint16) []uint16

// is16Bit reports whether src is dithered at 16 bits a channel: the
// standard library's 16-bit colour image types, and any image whose colour
// model is one of its 16-bit colour models. Alpha-only images (Alpha16)
// are not: their colour is always white.
func is16Bit(src image.Image) bool {
	switch src.(type) {
	case *image.NRGBA64, *image.RGBA64, *image.Gray16:
		return true
	case *image.Alpha16:
		return false
	}
	switch src.ColorModel() {
	case color.NRGBA64Model, color.RGBA64Model, color.Gray16Model:
		return true
	}
	return false
}

// newRowLoader16 returns a 16-bit loader for src, with fast paths for the
// standard 16-bit types and a generic one for the rest.
func newRowLoader16(src image.Image) rowLoader16 {
	b := src.Bounds()
	switch s := src.(type) {
	case *image.NRGBA64:
		return func(y int, buf []uint16) []uint16 {
			off := s.PixOffset(b.Min.X, b.Min.Y+y)
			return loadBigEndian(s.Pix[off:off+8*b.Dx()], buf)
		}
	case *image.RGBA64:
		return func(y int, buf []uint16) []uint16 {
			off := s.PixOffset(b.Min.X, b.Min.Y+y)
			return unpremulRow16(loadBigEndian(s.Pix[off:off+8*b.Dx()], buf))
		}
	case *image.Gray16:
		return func(y int, buf []uint16) []uint16 { return loadGray16(s, b, y, buf) }
	}
	return func(y int, buf []uint16) []uint16 { return loadGeneric16(src, b, y, buf) }
}

// loadBigEndian decodes the big-endian 16-bit values of pix, 4 a pixel,
// into buf.
func loadBigEndian(pix []uint8, buf []uint16) []uint16 {
	n := len(pix) / 8
	buf = buf[:4*n]
	for x := range n {
		v := binary.BigEndian.Uint64(pix[8*x : 8*x+8 : 8*x+8])
		d := buf[4*x : 4*x+4 : 4*x+4]
		d[0], d[1], d[2], d[3] = uint16(v>>48), uint16(v>>32), uint16(v>>16), uint16(v)
	}
	return buf
}

// unpremulRow16 converts a premultiplied 16-bit RGBA row to straight alpha
// in place.
func unpremulRow16(row []uint16) []uint16 {
	for i := 0; i+3 < len(row); i += 4 {
		p := row[i : i+4 : i+4]
		if a := uint32(p[3]); a != 0xffff {
			p[0], p[1], p[2] = unpremul16(uint32(p[0]), a), unpremul16(uint32(p[1]), a), unpremul16(uint32(p[2]), a)
		}
	}
	return row
}

// unpremul16 undoes alpha premultiplication of one 16-bit channel as
// color.NRGBA64Model does (truncating), clamped for colour values above
// alpha, which a premultiplied colour cannot have but an image may hold.
func unpremul16(c, a uint32) uint16 {
	if a == 0 {
		return 0
	}
	return uint16(min(0xffff, c*0xffff/a))
}

// loadGray16 reads row y of a grey image as opaque grey RGBA.
func loadGray16(s *image.Gray16, b image.Rectangle, y int, buf []uint16) []uint16 {
	off := s.PixOffset(b.Min.X, b.Min.Y+y)
	pix := s.Pix[off : off+2*b.Dx()]
	buf = buf[:4*b.Dx()]
	for x := range b.Dx() {
		v := uint16(pix[2*x])<<8 | uint16(pix[2*x+1])
		d := buf[4*x : 4*x+4 : 4*x+4]
		d[0], d[1], d[2], d[3] = v, v, v, 0xffff
	}
	return buf
}

// loadGeneric16 reads any image through RGBA64At (no allocation) or At.
func loadGeneric16(src image.Image, b image.Rectangle, y int, buf []uint16) []uint16 {
	fast, _ := src.(image.RGBA64Image)
	sy := b.Min.Y + y
	buf = buf[:4*b.Dx()]
	for x := range b.Dx() {
		d := buf[4*x : 4*x+4 : 4*x+4]
		d[0], d[1], d[2], d[3] = straight16(src, fast, b.Min.X+x, sy)
	}
	return buf
}

// straight16 returns the pixel (x, y) of src in straight (not
// premultiplied) 16-bit RGBA, through fast (src, when it is an
// image.RGBA64Image, or nil) without allocating, or else through At.
func straight16(src image.Image, fast image.RGBA64Image, x, y int) (r, g, b, a uint16) {
	var pr, pg, pb, pa uint32
	if fast != nil {
		c := fast.RGBA64At(x, y)
		pr, pg, pb, pa = uint32(c.R), uint32(c.G), uint32(c.B), uint32(c.A)
	} else {
		pr, pg, pb, pa = src.At(x, y).RGBA()
	}
	return unpremul16(pr, pa), unpremul16(pg, pa), unpremul16(pb, pa), uint16(pa)
}

// narrowRow returns the top byte of every value of row in dst. Its alpha
// is what the 8-bit loader gives for the same image, so transparency is
// decided as for any source; its colour is not used.
func narrowRow(row []uint16, dst []uint8) []uint8 {
	dst = dst[:len(row)]
	for i, v := range row {
		dst[i] = uint8(v >> 8)
	}
	return dst
}

// rgba64Opaque reports whether every pixel of a 16-bit RGBA row is opaque
// at 8 bits: the top byte of its alpha is 0xff (as narrowRow and scanAlpha
// take it). The alpha values are ANDed together, without a branch a pixel.
func rgba64Opaque(row []uint16) bool {
	acc := uint16(0xffff)
	for i := 3; i < len(row); i += 4 {
		acc &= row[i]
	}
	return acc>>8 == 0xff
}
