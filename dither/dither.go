// Package dither reduces the colours of an image by dithering: error
// diffusion (Floyd-Steinberg and seven others), ordered dithering (Bayer
// matrices and a blue-noise mask), random thresholds, or plain
// posterisation.
//
// Colours are quantised either to evenly spaced levels per channel (the
// old service's "channels": 2 levels give 8 colours) or to a fixed palette.
// Error is measured in linear light by default, or on sRGB values as
// ImageMagick does. The engine works in integer fixed point on raw pixel
// rows; besides the result it allocates memory proportional to the width.
// Sources with 16 bits a channel (16-bit PNGs) are dithered at 16 bits, so
// a shade between two 8-bit values dithers to its own average.
//
// The package uses only the standard library and does no I/O.
package dither

import (
	"context"
	"errors"
	"image"
	"image/color"
)

// Dither returns src dithered with opts. The result is an *image.Paletted
// when it needs 256 colours or fewer (a fully transparent colour counts as
// one) and no pixel is partly transparent; otherwise an *image.NRGBA when
// src has transparency, else an *image.RGBA. Fully transparent pixels stay
// transparent and other alpha values are kept. The result's bounds start
// at (0, 0) and have the size of src's.
//
// An *image.NRGBA64, *image.RGBA64 or *image.Gray16, or any image with a
// 16-bit colour model of image/color, is read and dithered at 16 bits a
// channel; its alpha, like the result's, counts at 8 bits (the top byte):
// a pixel whose alpha is below 0x0100 is fully transparent.
func Dither(src image.Image, opts Options) (image.Image, error) {
	return DitherContext(context.Background(), src, opts)
}

// DitherContext is Dither, stopped when ctx is done: the engine looks at
// ctx between rows and then returns ctx's error (and no image). Reading
// the source's alpha before dithering (for image types other than RGBA,
// NRGBA and their 16-bit forms) is not interrupted. A ctx that is never
// done, such as context.Background, costs nothing.
func DitherContext(ctx context.Context, src image.Image, opts Options) (image.Image, error) {
	if src == nil {
		return nil, errors.New("dither: nil image")
	}
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	kind, sure := guessAlpha(src)
	e := newEngine(src, opts, kind, !sure)
	e.done = ctx.Done()
	if !e.run() {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		// A row of an image taken to be opaque was not: start again.
		e = newEngine(src, opts, scanAlpha(src), false)
		e.done = ctx.Done()
		if !e.run() {
			return nil, ctx.Err()
		}
	}
	return e.out.img, nil
}

// guessAlpha returns the alphaKind of src and whether it is certain. For
// RGBA and NRGBA images, and their 16-bit forms, it guesses opaque, to be
// checked row by row while dithering, which saves a pass over the image
// (for a 12 MP NRGBA64, the 20 to 25 ms of its Opaque method).
func guessAlpha(src image.Image) (alphaKind, bool) {
	switch src.(type) {
	case *image.RGBA, *image.NRGBA, *image.RGBA64, *image.NRGBA64:
		return alphaOpaque, false
	}
	return scanAlpha(src), true
}

// engine holds the state of one Dither call.
type engine struct {
	opts  Options
	w, h  int
	c     int // channels dithered: 1 (grey levels) or 3
	load  rowLoader
	kind  alphaKind
	check bool // verify that every row is opaque, as kind was only guessed
	// done, when not nil, stops the engine between rows once closed (the
	// Done channel of DitherContext's ctx).
	done <-chan struct{}
	sp   *space
	lq   [3]*levelQuant // per channel, when quantising to levels
	pq   *paletteQuant  // when quantising to a palette
	buf  []uint8        // scratch for the loader, 4 bytes a pixel
	row  []uint8        // current source row, straight RGBA
	work []int32        // current row in working values, c a pixel
	idx  []uint8        // chosen level per channel, or palette index, a pixel
	out  *output

	// load16 is set for a 16-bit source (see is16Bit), whose rows it
	// reads into row16; load is then unset, and row holds row16 narrowed
	// to 8 bits for the alpha tests, or nil when the source is opaque (no
	// alpha test reads it then; rowChecked reads row16's alpha). The paths that read the colour of row
	// never run on such a source: the others take working values from
	// loadWork, or read row16 (fs2Wide, thresholdWideRow).
	load16 rowLoader16
	buf16  []uint16 // scratch for load16
	row16  []uint16 // current source row, straight 16-bit RGBA
}

func newEngine(src image.Image, opts Options, kind alphaKind, check bool) *engine {
	b := src.Bounds()
	e := &engine{opts: opts, w: b.Dx(), h: b.Dy(), c: 3, sp: spaceFor(opts.ColorSpace), kind: kind, check: check}
	if is16Bit(src) {
		e.load16, e.buf16 = newRowLoader16(src), make([]uint16, 4*e.w)
	} else {
		e.load = newRowLoader(src, e.kind == alphaOpaque)
	}
	e.buf = make([]uint8, 4*e.w)
	if p := opts.palette(); p != nil {
		e.pq = newPaletteQuant(p, e.sp)
	} else {
		levels := opts.channelLevels()
		if opts.Grayscale {
			e.c = 1
		}
		for ch := 0; ch < e.c; ch++ {
			e.lq[ch] = newLevelQuant(levels[ch], e.sp)
		}
	}
	e.work = make([]int32, e.c*e.w)
	if e.pq != nil {
		e.idx = make([]uint8, e.w)
	} else {
		e.idx = make([]uint8, e.c*e.w)
	}
	e.out = newOutput(e)
	return e
}

// run dithers every row into e.out. It returns false when e.check finds
// a row that is not opaque, or when e.done is closed (see stopped).
func (e *engine) run() bool {
	if e.w == 0 || e.h == 0 {
		return true
	}
	if e.opts.Algorithm.IsErrorDiffusion() {
		return e.runDiffusion()
	}
	return e.runThreshold()
}

// loadWork reads source row y into e.row (and e.row16) and e.work.
func (e *engine) loadWork(y int) {
	e.loadRow(y)
	if e.load16 != nil {
		e.work16()
		return
	}
	t := &e.sp.toWork
	if !e.opts.Grayscale {
		for x := 0; x < e.w; x++ {
			p, w := e.row[4*x:4*x+3:4*x+3], e.work[3*x:3*x+3:3*x+3]
			w[0], w[1], w[2] = t[p[0]], t[p[1]], t[p[2]]
		}
		return
	}
	for x := 0; x < e.w; x++ {
		p := e.row[4*x : 4*x+3 : 4*x+3]
		e.putLuma(x, t[p[0]], t[p[1]], t[p[2]])
	}
}

// work16 is loadWork's conversion for a 16-bit source: e.row16 to e.work.
func (e *engine) work16() {
	t := e.sp.toWork16()
	if !e.opts.Grayscale {
		for x := 0; x < e.w; x++ {
			p, w := e.row16[4*x:4*x+3:4*x+3], e.work[3*x:3*x+3:3*x+3]
			w[0], w[1], w[2] = t[p[0]], t[p[1]], t[p[2]]
		}
		return
	}
	for x := 0; x < e.w; x++ {
		p := e.row16[4*x : 4*x+3 : 4*x+3]
		e.putLuma(x, t[p[0]], t[p[1]], t[p[2]])
	}
}

// putLuma stores the luminance of the working values r, g, b as pixel x
// of e.work, once per channel dithered.
func (e *engine) putLuma(x int, r, g, b int32) {
	l := &e.sp.luma
	y := int32((int64(r)*l[0] + int64(g)*l[1] + int64(b)*l[2] + 32768) >> 16)
	if e.c == 1 {
		e.work[x] = y
	} else {
		e.work[3*x], e.work[3*x+1], e.work[3*x+2] = y, y, y
	}
}

// loadRow reads source row y into e.row, and for a 16-bit source into
// e.row16, with e.row its 8-bit form when the source has transparency.
func (e *engine) loadRow(y int) {
	if e.load16 != nil {
		e.row16 = e.load16(y, e.buf16)
		if e.kind != alphaOpaque {
			e.row = narrowRow(e.row16, e.buf)
		}
		return
	}
	e.row = e.load(y, e.buf)
}

// rowChecked reports whether the current row satisfies e.check: callers
// test it after dithering the row, while the row is still in the cache,
// and start again when it fails. A 16-bit row is tested in row16 (row is
// not loaded for an opaque 16-bit source), by its alpha's top byte, as
// scanAlpha decides.
func (e *engine) rowChecked() bool {
	if !e.check {
		return true
	}
	if e.load16 != nil {
		return rgba64Opaque(e.row16)
	}
	return rgbaOpaque(e.row, 0, 0, e.w, 1)
}

// stopped reports whether e.done is closed: the engine's caller no longer
// wants the result. Run loops test it once a row.
func (e *engine) stopped() bool {
	if e.done == nil {
		return false
	}
	select {
	case <-e.done:
		return true
	default:
		return false
	}
}

// opaqueAt reports whether pixel x of the current row is drawn (not
// fully transparent).
func (e *engine) opaqueAt(x int) bool {
	return e.kind == alphaOpaque || e.row[4*x+3] != 0
}

// output is the result image and how rows of chosen indices go into it.
type output struct {
	img      image.Image
	pal      *image.Paletted
	rgba     []uint8 // Pix of the RGBA or NRGBA result
	stride   int
	straight bool  // NRGBA: keep source alpha
	transp   uint8 // palette index of the transparent colour
	mul      [3]int
}

func newOutput(e *engine) *output {
	o := &output{}
	r := image.Rect(0, 0, e.w, e.h)
	colors := e.colors()
	need := len(colors)
	if e.kind == alphaBinary {
		need++
	}
	if e.pq == nil && e.c == 3 {
		o.mul = [3]int{e.lq[1].n * e.lq[2].n, e.lq[2].n, 1}
	}
	switch {
	case e.kind != alphaPartial && need <= 256:
		p := make(color.Palette, len(colors), need)
		for i, c := range colors {
			p[i] = c
		}
		if e.kind == alphaBinary {
			o.transp = uint8(len(p))
			p = append(p, color.NRGBA{})
		}
		o.pal = image.NewPaletted(r, p)
		o.img = o.pal
	case e.kind == alphaOpaque:
		m := image.NewRGBA(r)
		o.img, o.rgba, o.stride = m, m.Pix, m.Stride
	default:
		m := image.NewNRGBA(r)
		o.img, o.rgba, o.stride, o.straight = m, m.Pix, m.Stride, true
	}
	return o
}

// colors returns the output colours, in palette-index order; for three
// channels of levels the index is (r*levelsG+g)*levelsB+b.
func (e *engine) colors() []color.NRGBA {
	if e.pq != nil {
		return e.pq.colors
	}
	if e.c == 1 {
		q := e.lq[0]
		out := make([]color.NRGBA, q.n)
		for k := range out {
			v := q.out8[k]
			out[k] = color.NRGBA{v, v, v, 255}
		}
		return out
	}
	n := e.lq[0].n * e.lq[1].n * e.lq[2].n
	if n > 256 {
		return make([]color.NRGBA, n) // only the count matters: RGBA output
	}
	out := make([]color.NRGBA, 0, n)
	for r := 0; r < e.lq[0].n; r++ {
		for g := 0; g < e.lq[1].n; g++ {
			for b := 0; b < e.lq[2].n; b++ {
				out = append(out, color.NRGBA{e.lq[0].out8[r], e.lq[1].out8[g], e.lq[2].out8[b], 255})
			}
		}
	}
	return out
}

// palRow returns row y of a paletted result, or nil for other results.
func (e *engine) palRow(y int) []uint8 {
	if e.out.pal == nil {
		return nil
	}
	p := e.out.pal
	return p.Pix[y*p.Stride : y*p.Stride+e.w]
}

// emit writes the chosen indices of row y (e.idx) into the result.
func (e *engine) emit(y int) {
	o := e.out
	if o.pal != nil {
		e.emitPaletted(y)
		return
	}
	row := o.rgba[y*o.stride : y*o.stride+4*e.w]
	for x := 0; x < e.w; x++ {
		d := row[4*x : 4*x+4 : 4*x+4]
		a := uint8(255)
		if e.kind != alphaOpaque {
			a = e.row[4*x+3]
		}
		if a == 0 {
			d[0], d[1], d[2], d[3] = 0, 0, 0, 0
			continue
		}
		c := e.pixelColor(x)
		d[0], d[1], d[2], d[3] = c.R, c.G, c.B, a
	}
}

// pixelColor returns the opaque output colour chosen for pixel x.
func (e *engine) pixelColor(x int) color.NRGBA {
	switch {
	case e.pq != nil:
		return e.pq.colors[e.idx[x]]
	case e.c == 1:
		v := e.lq[0].out8[e.idx[x]]
		return color.NRGBA{v, v, v, 255}
	}
	i := e.idx[3*x : 3*x+3 : 3*x+3]
	return color.NRGBA{e.lq[0].out8[i[0]], e.lq[1].out8[i[1]], e.lq[2].out8[i[2]], 255}
}

func (e *engine) emitPaletted(y int) {
	o := e.out
	row := o.pal.Pix[y*o.pal.Stride : y*o.pal.Stride+e.w]
	switch {
	case e.pq != nil || e.c == 1:
		copy(row, e.idx[:e.w])
	default:
		m0, m1 := o.mul[0], o.mul[1]
		for x := range row {
			i := e.idx[3*x : 3*x+3 : 3*x+3]
			row[x] = uint8(int(i[0])*m0 + int(i[1])*m1 + int(i[2]))
		}
	}
	if e.kind == alphaBinary {
		for x := range row {
			if e.row[4*x+3] == 0 {
				row[x] = o.transp
			}
		}
	}
}
