package dither

import "math/bits"

// genericOnly turns the specialised row functions off, so that tests can
// compare them with the generic ones.
var genericOnly = false

// pad is the number of spare pixels on each side of an error row, so that
// kernel taps past the edges need no bounds tests.
const pad = 2

// diffusion is the state of an error-diffusion pass.
type diffusion struct {
	k     kernel
	shift int       // log2 of the divisor, or -1 when not a power of two
	rows  [][]int32 // error rows: rows[0] the current row, rows[i] i rows below
	s     int32     // strength, fixed point over 256
}

// runDiffusion dithers every row with the chosen error-diffusion kernel;
// false means a row failed the opaqueness check, or the engine was stopped.
func (e *engine) runDiffusion() bool {
	if e.canWavefront() {
		return e.runWavefront()
	}
	d := newDiffusion(kernels[e.opts.Algorithm], e.opts.strength(), e.c*(e.w+2*pad))
	p := e.diffusionRow(d)
	for y := 0; y < e.h; y++ {
		if p.direct {
			e.loadRow(y)
		} else {
			e.loadWork(y)
		}
		dir := 1
		if e.opts.Serpentine && y%2 == 1 {
			dir = -1
		}
		p.row(y, dir)
		if !e.rowChecked() || e.stopped() {
			return false
		}
		if !p.writesPal || e.out.pal == nil {
			e.emit(y)
		}
		d.advance(p.rewrites)
	}
	return true
}

// rowPass is the function that dithers one row and what it needs.
type rowPass struct {
	row func(y, dir int)
	// direct means it reads the source row itself (e.row, or e.row16
	// for a 16-bit source), so the row needs no working values.
	direct bool
	// writesPal means it writes a paletted result's row when there is
	// one, so the row needs no emit.
	writesPal bool
	// rewrites means it writes every element of the next error row,
	// which then needs no clearing.
	rewrites bool
}

// newDiffusion returns the state of an error-diffusion pass with kernel k,
// strength s (over 256) and error rows of stride elements.
func newDiffusion(k kernel, s int32, stride int) *diffusion {
	d := &diffusion{k: k, shift: -1, s: s}
	if bits.OnesCount(uint(k.divisor)) == 1 {
		d.shift = bits.TrailingZeros(uint(k.divisor))
	}
	for range k.rows() {
		d.rows = append(d.rows, make([]int32, stride))
	}
	return d
}

// diffusionRow picks the function that dithers one row.
func (e *engine) diffusionRow(d *diffusion) rowPass {
	fs := e.opts.Algorithm == FloydSteinberg && !genericOnly
	fsLevels := fs && e.pq == nil && e.c == 3
	two := fsLevels && e.lq[0].n == 2 && e.lq[1].n == 2 && e.lq[2].n == 2
	switch {
	case two && e.load16 != nil && e.kind == alphaOpaque && d.s == 256 && e.out.pal != nil:
		t := e.sp.toWork16()
		return rowPass{row: func(y, dir int) { fs2Wide(e.row16, d.rows[0], d.rows[1], e.palRow(y), t, dir) }, direct: true, writesPal: true, rewrites: true}
	case fsLevels && e.load16 != nil:
		return rowPass{row: func(_, dir int) { e.floydSteinbergWorkRow(d, dir) }, rewrites: true}
	case two:
		return rowPass{row: func(y, dir int) { e.floydSteinbergRow2(d, dir, e.palRow(y)) }, direct: true, writesPal: true, rewrites: true}
	case fsLevels:
		return rowPass{row: func(y, dir int) { e.floydSteinbergRow(d, dir, e.palRow(y)) }, direct: true, writesPal: true, rewrites: true}
	case fs && e.pq != nil:
		return rowPass{row: func(_, dir int) { e.floydSteinbergPaletteRow(d, dir) }, rewrites: true}
	case e.pq != nil:
		return rowPass{row: func(_, dir int) { e.diffusePaletteRow(d, dir) }}
	}
	return rowPass{row: func(_, dir int) { e.diffuseLevelsRow(d, dir) }}
}

// advance moves the error rows up by one; the fast Floyd-Steinberg path
// overwrites its next row, so it needs no clearing.
func (d *diffusion) advance(noClear bool) {
	first := d.rows[0]
	if !noClear {
		clear(first)
	}
	copy(d.rows, d.rows[1:])
	d.rows[len(d.rows)-1] = first
}

// div divides accumulated error by the kernel divisor, rounding to nearest
// (halves up).
func (d *diffusion) div(acc int32) int32 {
	n := acc + int32(d.k.divisor/2)
	if d.shift >= 0 {
		return n >> d.shift
	}
	q := n / int32(d.k.divisor)
	if n%int32(d.k.divisor) < 0 {
		q-- // round towards minus infinity
	}
	return q
}

// scale applies the strength to an error.
func (d *diffusion) scale(err int32) int32 {
	if d.s == 256 {
		return err
	}
	return err * d.s >> 8
}

// spread adds err times each kernel weight to the error rows around
// element p (pixel offset times channels plus channel) of the rows.
func (d *diffusion) spread(p, step int, err int32) {
	for _, t := range d.k.taps {
		d.rows[t.dy][p+t.dx*step] += err * int32(t.w)
	}
}

// spread3 is spread for the three channels of the pixel at element p.
func (d *diffusion) spread3(p, step int, e0, e1, e2 int32) {
	for _, t := range d.k.taps {
		q := p + t.dx*step
		r := d.rows[t.dy][q : q+3 : q+3]
		w := int32(t.w)
		r[0] += e0 * w
		r[1] += e1 * w
		r[2] += e2 * w
	}
}

// diffuseLevelsRow dithers the current row to levels with any kernel.
func (e *engine) diffuseLevelsRow(d *diffusion, dir int) {
	if e.c == 3 {
		e.diffuseRGBRow(d, dir)
		return
	}
	c, cur := e.c, d.rows[0]
	step := dir * c
	for i := 0; i < e.w; i++ {
		x := i
		if dir < 0 {
			x = e.w - 1 - i
		}
		if !e.opaqueAt(x) {
			continue
		}
		for ch := 0; ch < c; ch++ {
			p := (x+pad)*c + ch
			q := e.lq[ch]
			v := e.work[x*c+ch] + d.div(cur[p])
			k := q.nearest(v)
			e.idx[x*c+ch] = uint8(k)
			d.spread(p, step, d.scale(v-q.lv[k]))
		}
	}
}

// diffuseRGBRow is diffuseLevelsRow for three channels.
func (e *engine) diffuseRGBRow(d *diffusion, dir int) {
	cur, step := d.rows[0], 3*dir
	for i := 0; i < e.w; i++ {
		x := i
		if dir < 0 {
			x = e.w - 1 - i
		}
		if !e.opaqueAt(x) {
			continue
		}
		p := (x + pad) * 3
		var err [3]int32
		for ch := range 3 {
			q := e.lq[ch]
			v := e.work[3*x+ch] + d.div(cur[p+ch])
			k := q.nearest(v)
			e.idx[3*x+ch] = uint8(k)
			err[ch] = d.scale(v - q.lv[k])
		}
		d.spread3(p, step, err[0], err[1], err[2])
	}
}

// diffusePaletteRow dithers the current row to the palette with any kernel.
func (e *engine) diffusePaletteRow(d *diffusion, dir int) {
	cur := d.rows[0]
	step := dir * 3
	for i := 0; i < e.w; i++ {
		x := i
		if dir < 0 {
			x = e.w - 1 - i
		}
		if !e.opaqueAt(x) {
			continue
		}
		p := (x + pad) * 3
		// Clamped: error the palette cannot absorb (its colours need not
		// span the range) would otherwise grow without bound.
		var v [3]int32
		for ch := range v {
			v[ch] = clampWork(e.work[3*x+ch] + d.div(cur[p+ch]))
		}
		k := e.pq.nearest(v[0], v[1], v[2])
		e.idx[x] = uint8(k)
		pc := &e.pq.work[k]
		d.spread3(p, step, d.scale(v[0]-pc[0]), d.scale(v[1]-pc[1]), d.scale(v[2]-pc[2]))
	}
}

// floydSteinbergRow is diffuseLevelsRow specialised for Floyd-Steinberg on
// three channels, reading the source row directly. The error for the next
// pixel is carried in registers and each element of the next row is
// written once. With a paletted result, pal is its row and gets the
// palette indices; otherwise the levels go to e.idx.
func (e *engine) floydSteinbergRow(d *diffusion, dir int, pal []uint8) {
	cur, nxt := d.rows[0], d.rows[1]
	qr, qg, qb := e.lq[0], e.lq[1], e.lq[2]
	m0, m1 := e.out.mul[0], e.out.mul[1]
	t := &e.sp.toWork
	var fr, fg, fb int32 // 7/16 of the error, for the next pixel
	var ar, ag, ab int32 // next-row error still missing the next pixel's share
	var br, bg, bb int32 // next-row error one pixel further on
	step := 3 * dir
	x := 0
	if dir < 0 {
		x = e.w - 1
	}
	for range e.w {
		p, o := (x+pad)*3, 3*x
		var er, eg, eb int32
		s := e.row[4*x : 4*x+4 : 4*x+4]
		if e.kind == alphaOpaque || s[3] != 0 {
			c := cur[p : p+3 : p+3]
			vr := t[s[0]] + (c[0]+fr+8)>>4
			vg := t[s[1]] + (c[1]+fg+8)>>4
			vb := t[s[2]] + (c[2]+fb+8)>>4
			kr, kg, kb := qr.nearest(vr), qg.nearest(vg), qb.nearest(vb)
			er, eg, eb = vr-qr.lv[kr], vg-qg.lv[kg], vb-qb.lv[kb]
			if pal != nil {
				pal[x] = uint8(kr*m0 + kg*m1 + kb)
			} else {
				id := e.idx[o : o+3 : o+3]
				id[0], id[1], id[2] = uint8(kr), uint8(kg), uint8(kb)
			}
			if d.s != 256 {
				er, eg, eb = er*d.s>>8, eg*d.s>>8, eb*d.s>>8
			}
		} else if pal != nil {
			pal[x] = e.out.transp
		}
		n := nxt[p-step : p-step+3 : p-step+3]
		n[0], n[1], n[2] = ar+3*er, ag+3*eg, ab+3*eb
		ar, ag, ab = br+5*er, bg+5*eg, bb+5*eb
		br, bg, bb = er, eg, eb
		fr, fg, fb = 7*er, 7*eg, 7*eb
		x += dir
	}
	p := (x - dir + pad) * 3
	nxt[p], nxt[p+1], nxt[p+2] = ar, ag, ab
	nxt[p+step], nxt[p+step+1], nxt[p+step+2] = br, bg, bb
}

// floydSteinbergWorkRow is floydSteinbergRow for a 16-bit source: it reads
// the working values (e.work) instead of the 8-bit row, and writes the
// levels to e.idx.
func (e *engine) floydSteinbergWorkRow(d *diffusion, dir int) {
	cur, nxt, work, idx := d.rows[0], d.rows[1], e.work, e.idx
	qr, qg, qb := e.lq[0], e.lq[1], e.lq[2]
	var fr, fg, fb, ar, ag, ab, br, bg, bb int32 // as in floydSteinbergRow
	step := 3 * dir
	x := 0
	if dir < 0 {
		x = e.w - 1
	}
	for range e.w {
		p, o := (x+pad)*3, 3*x
		var er, eg, eb int32
		if e.opaqueAt(x) {
			w, c := work[o:o+3:o+3], cur[p:p+3:p+3]
			vr := w[0] + (c[0]+fr+8)>>4
			vg := w[1] + (c[1]+fg+8)>>4
			vb := w[2] + (c[2]+fb+8)>>4
			kr, kg, kb := qr.nearest(vr), qg.nearest(vg), qb.nearest(vb)
			er, eg, eb = vr-qr.lv[kr], vg-qg.lv[kg], vb-qb.lv[kb]
			id := idx[o : o+3 : o+3]
			id[0], id[1], id[2] = uint8(kr), uint8(kg), uint8(kb)
			if d.s != 256 {
				er, eg, eb = er*d.s>>8, eg*d.s>>8, eb*d.s>>8
			}
		}
		n := nxt[p-step : p-step+3 : p-step+3]
		n[0], n[1], n[2] = ar+3*er, ag+3*eg, ab+3*eb
		ar, ag, ab = br+5*er, bg+5*eg, bb+5*eb
		br, bg, bb = er, eg, eb
		fr, fg, fb = 7*er, 7*eg, 7*eb
		x += dir
	}
	p := (x - dir + pad) * 3
	nxt[p], nxt[p+1], nxt[p+2] = ar, ag, ab
	nxt[p+step], nxt[p+step+1], nxt[p+step+2] = br, bg, bb
}

// floydSteinbergRow2 is floydSteinbergRow for two levels in every channel,
// the default. Quantising is a comparison with the midpoint, with no table
// look-up between one pixel's error and the next pixel, and the palette
// index is (r<<2 | g<<1 | b).
func (e *engine) floydSteinbergRow2(d *diffusion, dir int, pal []uint8) {
	cur, nxt, row, idx := d.rows[0], d.rows[1], e.row, e.idx
	thr, hi, s := e.lq[0].thr[0], e.lq[0].lv[1], d.s // same in every channel
	if pal != nil && s == 256 && e.kind == alphaOpaque {
		fs2Opaque(row, cur, nxt, pal, &e.sp.toWork, dir)
		return
	}
	opaque, transp := e.kind == alphaOpaque, e.out.transp
	t := &e.sp.toWork
	var fr, fg, fb, ar, ag, ab, br, bg, bb int32 // as in floydSteinbergRow
	step := 3 * dir
	x := 0
	if dir < 0 {
		x = e.w - 1
	}
	for range e.w {
		p := (x + pad) * 3
		var er, eg, eb int32
		px := row[4*x : 4*x+4 : 4*x+4]
		if opaque || px[3] != 0 {
			c := cur[p : p+3 : p+3]
			vr := t[px[0]] + (c[0]+fr+8)>>4
			vg := t[px[1]] + (c[1]+fg+8)>>4
			vb := t[px[2]] + (c[2]+fb+8)>>4
			// -1 when at or above the midpoint, else 0.
			kr, kg, kb := (thr-1-vr)>>31, (thr-1-vg)>>31, (thr-1-vb)>>31
			er, eg, eb = vr-kr&hi, vg-kg&hi, vb-kb&hi
			if pal != nil {
				pal[x] = uint8(kr&4 | kg&2 | kb&1)
			} else {
				id := idx[3*x : 3*x+3 : 3*x+3]
				id[0], id[1], id[2] = uint8(-kr), uint8(-kg), uint8(-kb)
			}
			if s != 256 {
				er, eg, eb = er*s>>8, eg*s>>8, eb*s>>8
			}
		} else if pal != nil {
			pal[x] = transp
		}
		n := nxt[p-step : p-step+3 : p-step+3]
		n[0], n[1], n[2] = ar+3*er, ag+3*eg, ab+3*eb
		ar, ag, ab = br+5*er, bg+5*eg, bb+5*eb
		br, bg, bb = er, eg, eb
		fr, fg, fb = 7*er, 7*eg, 7*eb
		x += dir
	}
	p := (x - dir + pad) * 3
	nxt[p], nxt[p+1], nxt[p+2] = ar, ag, ab
	nxt[p+step], nxt[p+step+1], nxt[p+step+2] = br, bg, bb
}

// Two-level quantisation in every colour space: levels 0 and workMax.
const (
	twoHi  = workMax
	twoMid = (workMax + 1) / 2
)

// fs2Opaque is floydSteinbergRow2 for the common case: an opaque row, a
// paletted result and full strength. Only the error for the next pixel is
// carried in registers; the next row is updated in memory, off the
// critical path, so that the loop does not spill. Each direction has its
// own loop, which lets one bounds check cover the three next-row pixels.
func fs2Opaque(row []uint8, cur, nxt []int32, pal []uint8, t *[256]int32, dir int) {
	w := len(pal)
	row, cur, nxt = row[:4*w], cur[:3*(w+2*pad)], nxt[:3*(w+2*pad)]
	if dir > 0 {
		fs2Forward(row, cur, nxt, pal, t)
		return
	}
	fs2Backward(row, cur, nxt, pal, t)
}

// fs2Forward is fs2Opaque from left to right.
func fs2Forward(row []uint8, cur, nxt []int32, pal []uint8, t *[256]int32) {
	var f [3]int32
	fs2ForwardRange(row, cur, nxt, pal, t, 0, len(pal), &f)
}

// fs2ForwardRange is fs2Forward for pixels x0 to x1 (exclusive) of the
// row; f carries 7/16 of the error for the next pixel between ranges.
func fs2ForwardRange(row []uint8, cur, nxt []int32, pal []uint8, t *[256]int32, x0, x1 int, f *[3]int32) {
	fr, fg, fb := f[0], f[1], f[2]
	if x0 == 0 {
		clear(nxt[3*pad-3 : 3*pad+3])
	}
	for x := x0; x < x1; x++ {
		p := (x + pad) * 3
		px, c := row[4*x:4*x+3:4*x+3], cur[p:p+3:p+3]
		vr := t[px[0]] + (c[0]+fr+8)>>4
		vg := t[px[1]] + (c[1]+fg+8)>>4
		vb := t[px[2]] + (c[2]+fb+8)>>4
		kr, kg, kb := (twoMid-1-vr)>>31, (twoMid-1-vg)>>31, (twoMid-1-vb)>>31
		er, eg, eb := vr-kr&twoHi, vg-kg&twoHi, vb-kb&twoHi
		pal[x] = uint8(kr&4 | kg&2 | kb&1)
		n := nxt[p-3 : p+6 : p+6] // behind, here, ahead
		n[0], n[1], n[2] = n[0]+3*er, n[1]+3*eg, n[2]+3*eb
		n[3], n[4], n[5] = n[3]+5*er, n[4]+5*eg, n[5]+5*eb
		n[6], n[7], n[8] = er, eg, eb
		fr, fg, fb = 7*er, 7*eg, 7*eb
	}
	f[0], f[1], f[2] = fr, fg, fb
}

// fs2Backward is fs2Opaque from right to left (serpentine odd rows).
func fs2Backward(row []uint8, cur, nxt []int32, pal []uint8, t *[256]int32) {
	var fr, fg, fb int32 // 7/16 of the error, for the next pixel
	last := (len(pal) - 1 + pad) * 3
	clear(nxt[last : last+6])
	for x := len(pal) - 1; x >= 0; x-- {
		p := (x + pad) * 3
		px, c := row[4*x:4*x+3:4*x+3], cur[p:p+3:p+3]
		vr := t[px[0]] + (c[0]+fr+8)>>4
		vg := t[px[1]] + (c[1]+fg+8)>>4
		vb := t[px[2]] + (c[2]+fb+8)>>4
		kr, kg, kb := (twoMid-1-vr)>>31, (twoMid-1-vg)>>31, (twoMid-1-vb)>>31
		er, eg, eb := vr-kr&twoHi, vg-kg&twoHi, vb-kb&twoHi
		pal[x] = uint8(kr&4 | kg&2 | kb&1)
		n := nxt[p-3 : p+6 : p+6] // ahead, here, behind
		n[6], n[7], n[8] = n[6]+3*er, n[7]+3*eg, n[8]+3*eb
		n[3], n[4], n[5] = n[3]+5*er, n[4]+5*eg, n[5]+5*eb
		n[0], n[1], n[2] = er, eg, eb
		fr, fg, fb = 7*er, 7*eg, 7*eb
	}
}

// fs2Wide is fs2Opaque for a 16-bit source: it reads 16-bit pixels
// (row, 4 values a pixel) through the 16-bit table t.
func fs2Wide(row []uint16, cur, nxt []int32, pal []uint8, t *[65536]int32, dir int) {
	w := len(pal)
	row, cur, nxt = row[:4*w], cur[:3*(w+2*pad)], nxt[:3*(w+2*pad)]
	if dir > 0 {
		fs2WideForward(row, cur, nxt, pal, t)
		return
	}
	fs2WideBackward(row, cur, nxt, pal, t)
}

// fs2WideForward is fs2Wide from left to right.
func fs2WideForward(row []uint16, cur, nxt []int32, pal []uint8, t *[65536]int32) {
	var fr, fg, fb int32 // 7/16 of the error, for the next pixel
	clear(nxt[3*pad-3 : 3*pad+3])
	for x := range pal {
		p := (x + pad) * 3
		px, c := row[4*x:4*x+3:4*x+3], cur[p:p+3:p+3]
		vr := t[px[0]] + (c[0]+fr+8)>>4
		vg := t[px[1]] + (c[1]+fg+8)>>4
		vb := t[px[2]] + (c[2]+fb+8)>>4
		kr, kg, kb := (twoMid-1-vr)>>31, (twoMid-1-vg)>>31, (twoMid-1-vb)>>31
		er, eg, eb := vr-kr&twoHi, vg-kg&twoHi, vb-kb&twoHi
		pal[x] = uint8(kr&4 | kg&2 | kb&1)
		n := nxt[p-3 : p+6 : p+6] // behind, here, ahead
		n[0], n[1], n[2] = n[0]+3*er, n[1]+3*eg, n[2]+3*eb
		n[3], n[4], n[5] = n[3]+5*er, n[4]+5*eg, n[5]+5*eb
		n[6], n[7], n[8] = er, eg, eb
		fr, fg, fb = 7*er, 7*eg, 7*eb
	}
}

// fs2WideBackward is fs2Wide from right to left (serpentine odd rows).
func fs2WideBackward(row []uint16, cur, nxt []int32, pal []uint8, t *[65536]int32) {
	var fr, fg, fb int32 // 7/16 of the error, for the next pixel
	last := (len(pal) - 1 + pad) * 3
	clear(nxt[last : last+6])
	for x := len(pal) - 1; x >= 0; x-- {
		p := (x + pad) * 3
		px, c := row[4*x:4*x+3:4*x+3], cur[p:p+3:p+3]
		vr := t[px[0]] + (c[0]+fr+8)>>4
		vg := t[px[1]] + (c[1]+fg+8)>>4
		vb := t[px[2]] + (c[2]+fb+8)>>4
		kr, kg, kb := (twoMid-1-vr)>>31, (twoMid-1-vg)>>31, (twoMid-1-vb)>>31
		er, eg, eb := vr-kr&twoHi, vg-kg&twoHi, vb-kb&twoHi
		pal[x] = uint8(kr&4 | kg&2 | kb&1)
		n := nxt[p-3 : p+6 : p+6] // ahead, here, behind
		n[6], n[7], n[8] = n[6]+3*er, n[7]+3*eg, n[8]+3*eb
		n[3], n[4], n[5] = n[3]+5*er, n[4]+5*eg, n[5]+5*eb
		n[0], n[1], n[2] = er, eg, eb
		fr, fg, fb = 7*er, 7*eg, 7*eb
	}
}

// floydSteinbergPaletteRow is diffusePaletteRow specialised for
// Floyd-Steinberg: the error for the next pixel stays in registers and
// the kernel is written out.
func (e *engine) floydSteinbergPaletteRow(d *diffusion, dir int) {
	cur, nxt, work, idx, pq, s := d.rows[0], d.rows[1], e.work, e.idx, e.pq, d.s
	var fr, fg, fb int32 // 7/16 of the error, for the next pixel
	step := 3 * dir
	x := 0
	if dir < 0 {
		x = e.w - 1
	}
	p0 := (x + pad) * 3
	clear(nxt[p0-step : p0-step+3])
	clear(nxt[p0 : p0+3])
	for range e.w {
		p := (x + pad) * 3
		var er, eg, eb int32
		if e.opaqueAt(x) {
			w, c := work[3*x:3*x+3:3*x+3], cur[p:p+3:p+3]
			vr := clampWork(w[0] + (c[0]+fr+8)>>4) // as in diffusePaletteRow
			vg := clampWork(w[1] + (c[1]+fg+8)>>4)
			vb := clampWork(w[2] + (c[2]+fb+8)>>4)
			k := pq.nearest(vr, vg, vb)
			idx[x] = uint8(k)
			pc := &pq.work[k]
			er, eg, eb = vr-pc[0], vg-pc[1], vb-pc[2]
			if s != 256 {
				er, eg, eb = er*s>>8, eg*s>>8, eb*s>>8
			}
		}
		back, here, ahead := nxt[p-step:p-step+3:p-step+3], nxt[p:p+3:p+3], nxt[p+step:p+step+3:p+step+3]
		back[0], back[1], back[2] = back[0]+3*er, back[1]+3*eg, back[2]+3*eb
		here[0], here[1], here[2] = here[0]+5*er, here[1]+5*eg, here[2]+5*eb
		ahead[0], ahead[1], ahead[2] = er, eg, eb
		fr, fg, fb = 7*er, 7*eg, 7*eb
		x += dir
	}
}
