package dither

import "math/bits"

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

// runDiffusion dithers every row with the chosen error-diffusion kernel.
func (e *engine) runDiffusion() {
	k := kernels[e.opts.Algorithm]
	d := &diffusion{k: k, shift: -1, s: e.opts.strength()}
	if bits.OnesCount(uint(k.divisor)) == 1 {
		d.shift = bits.TrailingZeros(uint(k.divisor))
	}
	stride := e.c * (e.w + 2*pad)
	for range k.rows() {
		d.rows = append(d.rows, make([]int32, stride))
	}
	fast := e.opts.Algorithm == FloydSteinberg && e.pq == nil && e.c == 3
	for y := 0; y < e.h; y++ {
		e.loadWork(y)
		dir := 1
		if e.opts.Serpentine && y%2 == 1 {
			dir = -1
		}
		switch {
		case fast:
			e.floydSteinbergRow(d, dir)
		case e.pq != nil:
			e.diffusePaletteRow(d, dir)
		default:
			e.diffuseLevelsRow(d, dir)
		}
		e.emit(y)
		d.advance(fast)
	}
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
	half := int32(d.k.divisor / 2)
	if d.shift >= 0 {
		return (acc + half) >> d.shift
	}
	n := acc + half
	q := n / int32(d.k.divisor)
	if n%int32(d.k.divisor) < 0 {
		q--
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

// diffuseLevelsRow dithers the current row to levels with any kernel.
func (e *engine) diffuseLevelsRow(d *diffusion, dir int) {
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
		var v [3]int32
		for ch := range v {
			v[ch] = e.work[3*x+ch] + d.div(cur[p+ch])
		}
		k := e.pq.nearest(v[0], v[1], v[2])
		e.idx[x] = uint8(k)
		for ch := range v {
			d.spread(p+ch, step, d.scale(v[ch]-e.pq.work[k][ch]))
		}
	}
}

// floydSteinbergRow is diffuseLevelsRow specialised for Floyd-Steinberg on
// three channels. The error for the next pixel is carried in registers and
// each element of the next row is written once.
func (e *engine) floydSteinbergRow(d *diffusion, dir int) {
	cur, nxt := d.rows[0], d.rows[1]
	qr, qg, qb := e.lq[0], e.lq[1], e.lq[2]
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
		if e.opaqueAt(x) {
			w, c, id := e.work[o:o+3:o+3], cur[p:p+3:p+3], e.idx[o:o+3:o+3]
			er = fsChannel(qr, w[0]+(c[0]+fr+8)>>4, &id[0])
			eg = fsChannel(qg, w[1]+(c[1]+fg+8)>>4, &id[1])
			eb = fsChannel(qb, w[2]+(c[2]+fb+8)>>4, &id[2])
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

// fsChannel quantises v to the nearest level, stores the level and
// returns the error.
func fsChannel(q *levelQuant, v int32, idx *uint8) int32 {
	k := q.nearest(v)
	*idx = uint8(k)
	return v - q.lv[k]
}
