package dither

import (
	"image"
	"image/color"
)

// rowLoader writes row y of an image as 8-bit non-premultiplied RGB
// (3 bytes a pixel) and alpha (1 byte a pixel).
type rowLoader func(y int, rgb, alpha []uint8)

// newRowLoader returns a loader for src, with a fast path for the common
// standard image types and a generic one for the rest.
func newRowLoader(src image.Image) rowLoader {
	b := src.Bounds()
	switch s := src.(type) {
	case *image.RGBA:
		return func(y int, rgb, alpha []uint8) { loadRGBA(s, b, y, rgb, alpha) }
	case *image.NRGBA:
		return func(y int, rgb, alpha []uint8) { loadNRGBA(s, b, y, rgb, alpha) }
	case *image.YCbCr:
		return func(y int, rgb, alpha []uint8) { loadYCbCr(s, b, y, rgb, alpha) }
	case *image.Gray:
		return func(y int, rgb, alpha []uint8) { loadGray(s, b, y, rgb, alpha) }
	case *image.Paletted:
		lut := paletteLUT(s.Palette)
		return func(y int, rgb, alpha []uint8) { loadPaletted(s, lut, b, y, rgb, alpha) }
	}
	return func(y int, rgb, alpha []uint8) { loadGeneric(src, b, y, rgb, alpha) }
}

func loadRGBA(s *image.RGBA, b image.Rectangle, y int, rgb, alpha []uint8) {
	off := s.PixOffset(b.Min.X, b.Min.Y+y)
	pix := s.Pix[off : off+4*b.Dx()]
	for x := range alpha {
		p := pix[4*x : 4*x+4 : 4*x+4]
		a := p[3]
		alpha[x] = a
		d := rgb[3*x : 3*x+3 : 3*x+3]
		if a == 255 {
			d[0], d[1], d[2] = p[0], p[1], p[2]
			continue
		}
		d[0], d[1], d[2] = unpremul(p[0], a), unpremul(p[1], a), unpremul(p[2], a)
	}
}

// unpremul undoes alpha premultiplication of one 8-bit channel.
func unpremul(c, a uint8) uint8 {
	if a == 0 {
		return 0
	}
	return uint8(min(255, (uint32(c)*255+uint32(a)/2)/uint32(a)))
}

func loadNRGBA(s *image.NRGBA, b image.Rectangle, y int, rgb, alpha []uint8) {
	off := s.PixOffset(b.Min.X, b.Min.Y+y)
	pix := s.Pix[off : off+4*b.Dx()]
	for x := range alpha {
		p := pix[4*x : 4*x+4 : 4*x+4]
		d := rgb[3*x : 3*x+3 : 3*x+3]
		d[0], d[1], d[2], alpha[x] = p[0], p[1], p[2], p[3]
	}
}

func loadYCbCr(s *image.YCbCr, b image.Rectangle, y int, rgb, alpha []uint8) {
	sy := b.Min.Y + y
	for x := range alpha {
		sx := b.Min.X + x
		yi, ci := s.YOffset(sx, sy), s.COffset(sx, sy)
		r, g, bl := color.YCbCrToRGB(s.Y[yi], s.Cb[ci], s.Cr[ci])
		d := rgb[3*x : 3*x+3 : 3*x+3]
		d[0], d[1], d[2], alpha[x] = r, g, bl, 255
	}
}

func loadGray(s *image.Gray, b image.Rectangle, y int, rgb, alpha []uint8) {
	off := s.PixOffset(b.Min.X, b.Min.Y+y)
	pix := s.Pix[off : off+b.Dx()]
	for x, v := range pix {
		d := rgb[3*x : 3*x+3 : 3*x+3]
		d[0], d[1], d[2], alpha[x] = v, v, v, 255
	}
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

func loadPaletted(s *image.Paletted, lut *[256][4]uint8, b image.Rectangle, y int, rgb, alpha []uint8) {
	off := s.PixOffset(b.Min.X, b.Min.Y+y)
	pix := s.Pix[off : off+b.Dx()]
	for x, i := range pix {
		c := &lut[i]
		d := rgb[3*x : 3*x+3 : 3*x+3]
		d[0], d[1], d[2], alpha[x] = c[0], c[1], c[2], c[3]
	}
}

// loadGeneric reads any image through RGBA64At (no allocation) or At.
func loadGeneric(src image.Image, b image.Rectangle, y int, rgb, alpha []uint8) {
	fast, _ := src.(image.RGBA64Image)
	sy := b.Min.Y + y
	for x := range alpha {
		var r, g, bl, a uint32
		if fast != nil {
			c := fast.RGBA64At(b.Min.X+x, sy)
			r, g, bl, a = uint32(c.R), uint32(c.G), uint32(c.B), uint32(c.A)
		} else {
			r, g, bl, a = src.At(b.Min.X+x, sy).RGBA()
		}
		d := rgb[3*x : 3*x+3 : 3*x+3]
		d[0], d[1], d[2] = unpremul16(r, a), unpremul16(g, a), unpremul16(bl, a)
		alpha[x] = uint8(a >> 8)
	}
}

// unpremul16 turns one 16-bit premultiplied channel into 8-bit straight colour.
func unpremul16(c, a uint32) uint8 {
	if a == 0 {
		return 0
	}
	return uint8(min(0xffff, c*0xffff/a) >> 8)
}

// alphaKind says which alpha values an image holds.
type alphaKind int

const (
	alphaOpaque  alphaKind = iota // every pixel opaque
	alphaBinary                   // only fully opaque and fully transparent pixels
	alphaPartial                  // some pixel partly transparent
)

// scanAlpha finds the alphaKind of src, reading it row by row with load.
func scanAlpha(src image.Image, load rowLoader, rgb, alpha []uint8) alphaKind {
	switch s := src.(type) {
	case *image.YCbCr, *image.Gray:
		return alphaOpaque
	case interface{ Opaque() bool }:
		if s.Opaque() {
			return alphaOpaque
		}
	}
	kind := alphaOpaque
	for y := 0; y < src.Bounds().Dy(); y++ {
		load(y, rgb, alpha)
		for _, a := range alpha {
			switch a {
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
