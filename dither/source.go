package dither

import (
	"encoding/binary"
	"image"
	"image/color"
)

// rowLoader returns row y of an image as 8-bit non-premultiplied RGBA,
// 4 bytes a pixel. It fills buf, or returns a read-only slice of the
// source's own pixels when they are already in that form.
type rowLoader func(y int, buf []uint8) []uint8

// newRowLoader returns a loader for src, with a fast path for the common
// standard image types and a generic one for the rest. opaque says src
// has no transparency, which lets RGBA rows be used in place.
func newRowLoader(src image.Image, opaque bool) rowLoader {
	b := src.Bounds()
	w := b.Dx()
	switch s := src.(type) {
	case *image.RGBA:
		return func(y int, buf []uint8) []uint8 {
			off := s.PixOffset(b.Min.X, b.Min.Y+y)
			if opaque {
				return s.Pix[off : off+4*w]
			}
			return unpremulRow(s.Pix[off:off+4*w], buf)
		}
	case *image.NRGBA:
		return func(y int, _ []uint8) []uint8 {
			off := s.PixOffset(b.Min.X, b.Min.Y+y)
			return s.Pix[off : off+4*w]
		}
	case *image.YCbCr:
		return func(y int, buf []uint8) []uint8 { return loadYCbCr(s, b, y, buf) }
	case *image.Gray:
		return func(y int, buf []uint8) []uint8 { return loadGray(s, b, y, buf) }
	case *image.Paletted:
		lut := paletteLUT(s.Palette)
		return func(y int, buf []uint8) []uint8 { return loadPaletted(s, lut, b, y, buf) }
	}
	return func(y int, buf []uint8) []uint8 { return loadGeneric(src, b, y, buf) }
}

// unpremulRow converts a premultiplied RGBA row to straight alpha in dst.
func unpremulRow(pix, dst []uint8) []uint8 {
	dst = dst[:len(pix)]
	for i := 0; i+3 < len(pix); i += 4 {
		p, d := pix[i:i+4:i+4], dst[i:i+4:i+4]
		a := p[3]
		if a == 255 {
			copy(d, p)
			continue
		}
		d[0], d[1], d[2], d[3] = unpremul(p[0], a), unpremul(p[1], a), unpremul(p[2], a), a
	}
	return dst
}

// unpremul undoes alpha premultiplication of one 8-bit channel.
func unpremul(c, a uint8) uint8 {
	if a == 0 {
		return 0
	}
	return uint8(min(255, (uint32(c)*255+uint32(a)/2)/uint32(a)))
}

func loadYCbCr(s *image.YCbCr, b image.Rectangle, y int, buf []uint8) []uint8 {
	sy, w := b.Min.Y+y, b.Dx()
	hs, ok := chromaShift(s.SubsampleRatio)
	if !ok || b.Min.X < 0 || s.Rect.Min.X < 0 {
		for x := 0; x < w; x++ {
			sx := b.Min.X + x
			yi, ci := s.YOffset(sx, sy), s.COffset(sx, sy)
			r, g, bl := color.YCbCrToRGB(s.Y[yi], s.Cb[ci], s.Cr[ci])
			d := buf[4*x : 4*x+4 : 4*x+4]
			d[0], d[1], d[2], d[3] = r, g, bl, 255
		}
		return buf[:4*w]
	}
	yi := s.YOffset(b.Min.X, sy)
	yrow := s.Y[yi : yi+w]
	ci := s.COffset(b.Min.X, sy) - b.Min.X>>hs
	for x, yy := range yrow {
		c := ci + (b.Min.X+x)>>hs
		// ycbcrToRGB, written out: the call would not be inlined.
		y1, cb1, cr1 := int32(yy)*0x10101, int32(s.Cb[c])-128, int32(s.Cr[c])-128
		d := buf[4*x : 4*x+4 : 4*x+4]
		d[0] = clamp16(y1 + 91881*cr1)
		d[1] = clamp16(y1 - 22554*cb1 - 46802*cr1)
		d[2] = clamp16(y1 + 116130*cb1)
		d[3] = 255
	}
	return buf[:4*w]
}

// chromaShift returns how many bits a column index shifts right to index
// the chroma planes, and false for an unknown subsampling.
func chromaShift(r image.YCbCrSubsampleRatio) (uint, bool) {
	switch r {
	case image.YCbCrSubsampleRatio444, image.YCbCrSubsampleRatio440:
		return 0, true
	case image.YCbCrSubsampleRatio422, image.YCbCrSubsampleRatio420:
		return 1, true
	case image.YCbCrSubsampleRatio411, image.YCbCrSubsampleRatio410:
		return 2, true
	}
	return 0, false
}

// ycbcrToRGB is color.YCbCrToRGB with branch-free clamping (same results).
func ycbcrToRGB(y, cb, cr uint8) (uint8, uint8, uint8) {
	yy := int32(y) * 0x10101
	cb1, cr1 := int32(cb)-128, int32(cr)-128
	return clamp16(yy + 91881*cr1), clamp16(yy - 22554*cb1 - 46802*cr1), clamp16(yy + 116130*cb1)
}

// clamp16 returns v>>16 clamped to [0, 255].
func clamp16(v int32) uint8 {
	v >>= 16
	v &^= v >> 31
	return uint8(min(v, 255))
}

func loadGray(s *image.Gray, b image.Rectangle, y int, buf []uint8) []uint8 {
	off := s.PixOffset(b.Min.X, b.Min.Y+y)
	for x, v := range s.Pix[off : off+b.Dx()] {
		d := buf[4*x : 4*x+4 : 4*x+4]
		d[0], d[1], d[2], d[3] = v, v, v, 255
	}
	return buf[:4*b.Dx()]
}

// paletteLUT returns the palette as non-premultiplied RGBA, 256 entries
// (indices past the palette read as opaque black, as image.Paletted does).
func paletteLUT(p color.Palette) *[256][4]uint8 {
	var lut [256][4]uint8
	for i := range lut {
		lut[i][3] = 255
		if i < len(p) {
			c := color.NRGBAModel.Convert(p[i]).(color.NRGBA)
			lut[i] = [4]uint8{c.R, c.G, c.B, c.A}
		}
	}
	return &lut
}

func loadPaletted(s *image.Paletted, lut *[256][4]uint8, b image.Rectangle, y int, buf []uint8) []uint8 {
	off := s.PixOffset(b.Min.X, b.Min.Y+y)
	for x, i := range s.Pix[off : off+b.Dx()] {
		copy(buf[4*x:4*x+4], lut[i][:])
	}
	return buf[:4*b.Dx()]
}

// loadGeneric reads any image through RGBA64At (no allocation) or At.
func loadGeneric(src image.Image, b image.Rectangle, y int, buf []uint8) []uint8 {
	fast, _ := src.(image.RGBA64Image)
	sy := b.Min.Y + y
	for x := 0; x < b.Dx(); x++ {
		r, g, bl, a := straight16(src, fast, b.Min.X+x, sy)
		d := buf[4*x : 4*x+4 : 4*x+4]
		d[0], d[1], d[2], d[3] = uint8(r>>8), uint8(g>>8), uint8(bl>>8), uint8(a>>8)
	}
	return buf[:4*b.Dx()]
}

// alphaKind says which alpha values an image holds.
type alphaKind int

const (
	alphaOpaque  alphaKind = iota // every pixel opaque
	alphaBinary                   // only fully opaque and fully transparent pixels
	alphaPartial                  // some pixel partly transparent
)

// scanAlpha finds the alphaKind of src.
func scanAlpha(src image.Image) alphaKind {
	b := src.Bounds()
	switch s := src.(type) {
	case *image.YCbCr, *image.Gray:
		return alphaOpaque
	case *image.RGBA:
		if rgbaOpaque(s.Pix, s.PixOffset(b.Min.X, b.Min.Y), s.Stride, b.Dx(), b.Dy()) {
			return alphaOpaque
		}
	case *image.NRGBA:
		if rgbaOpaque(s.Pix, s.PixOffset(b.Min.X, b.Min.Y), s.Stride, b.Dx(), b.Dy()) {
			return alphaOpaque
		}
	case interface{ Opaque() bool }:
		if s.Opaque() {
			return alphaOpaque
		}
	}
	load := newRowLoader(src, false)
	buf := make([]uint8, 4*b.Dx())
	if is16Bit(src) { // the same alpha bytes, read faster
		load16, buf16 := newRowLoader16(src), make([]uint16, 4*b.Dx())
		load = func(y int, buf []uint8) []uint8 { return narrowRow(load16(y, buf16), buf) }
	}
	kind := alphaOpaque
	for y := 0; y < b.Dy(); y++ {
		row := load(y, buf)
		for i := 3; i < len(row); i += 4 {
			switch row[i] {
			case 255:
			case 0:
				kind = alphaBinary
			default:
				return alphaPartial
			}
		}
	}
	return kind
}

// rgbaOpaque reports whether every alpha byte of a 4-byte-a-pixel image is
// 255, testing two pixels a step.
func rgbaOpaque(pix []uint8, off, stride, w, h int) bool {
	const mask = 0xff000000ff000000
	for y := 0; y < h; y++ {
		row := pix[off+y*stride : off+y*stride+4*w]
		acc := uint64(mask)
		i := 0
		for ; i+8 <= len(row); i += 8 {
			acc &= binary.LittleEndian.Uint64(row[i:])
		}
		if acc&mask != mask || (i < len(row) && row[i+3] != 255) {
			return false
		}
	}
	return true
}
