package dither

// thresholdMatrix returns the ranks (0..n*n-1) of an ordered-dithering
// matrix and its side, for ordered algorithms; None uses one cell.
func thresholdMatrix(a Algorithm) ([]int, int) {
	switch a {
	case Bayer2x2:
		return bayer(2), 2
	case Bayer4x4:
		return bayer(4), 4
	case Bayer8x8:
		return bayer(8), 8
	case Bayer16x16:
		return bayer(16), 16
	case BlueNoise:
		return blueNoiseMask(), blueNoiseSize
	}
	return []int{0}, 1
}

// bayer returns the n x n Bayer index matrix (n a power of two), row-major.
func bayer(n int) []int {
	m := []int{0}
	for size := 1; size < n; size *= 2 {
		next := make([]int, 4*size*size)
		for y := 0; y < size; y++ {
			for x := 0; x < size; x++ {
				v := 4 * m[y*size+x]
				next[y*2*size+x] = v
				next[y*2*size+x+size] = v + 2
				next[(y+size)*2*size+x] = v + 3
				next[(y+size)*2*size+x+size] = v + 1
			}
		}
		m = next
	}
	return m
}

// thresholds is the per-pixel threshold source of a threshold pass.
type thresholds struct {
	cells  []int32 // matrix thresholds, 0..65535, already scaled by strength
	side   int
	random bool
	seed   uint64
	s      int32
}

func newThresholds(o Options) *thresholds {
	t := &thresholds{s: o.strength(), random: o.Algorithm == Random, seed: uint64(o.Seed)}
	if o.Algorithm == None {
		t.s = 0
	}
	ranks, side := thresholdMatrix(o.Algorithm)
	t.side = side
	n := int64(side * side)
	for _, r := range ranks {
		v := int32((int64(2*r+1) * 65536) / (2 * n))
		t.cells = append(t.cells, t.scale(v))
	}
	return t
}

// scale pulls a threshold towards the middle as strength decreases.
func (t *thresholds) scale(v int32) int32 {
	return 32768 + (v-32768)*t.s>>8
}

// row fills dst with the thresholds of row y.
func (t *thresholds) row(y int, dst []int32) {
	if t.random {
		for x := range dst {
			dst[x] = t.scale(int32(mix(t.seed, uint64(y)<<32|uint64(x)) >> 48))
		}
		return
	}
	cells := t.cells[(y%t.side)*t.side : (y%t.side+1)*t.side]
	n := copy(dst, cells)
	for n < len(dst) { // the matrix side divides n: repeat what is there
		n += copy(dst[n:], dst[:n])
	}
}

// mix is a SplitMix64-style hash of a seed and a pixel position.
func mix(seed, v uint64) uint64 {
	z := seed ^ (v+0x9e3779b97f4a7c15)*0xbf58476d1ce4e5b9
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// runThreshold dithers every row with ordered, random or no thresholds;
// false means a row failed the opaqueness check, or the engine was stopped.
func (e *engine) runThreshold() bool {
	t := newThresholds(e.opts)
	trow := make([]int32, e.w)
	var lut *orderedLUT
	var table *thresholdTable
	var wide *wideLUT
	rgb := e.pq == nil && e.c == 3 && !genericOnly
	switch {
	case rgb && e.load16 == nil:
		lut = newOrderedLUT(e) // indexed by 8-bit source values
		if !t.random && t.side <= maxTableSide && e.out.pal != nil && e.kind == alphaOpaque {
			table = newThresholdTable(lut, t)
		}
	case rgb && e.w*e.h >= minWideLUTPixels:
		wide = newWideLUT(e)
	}
	direct := lut != nil || wide != nil // reads source rows, writes paletted rows
	for y := 0; y < e.h; y++ {
		if direct {
			e.loadRow(y)
		} else {
			e.loadWork(y)
		}
		switch {
		case table != nil:
			table.row(y, e.row, e.palRow(y))
		case lut != nil:
			t.row(y, trow)
			e.thresholdRGBRow(lut, trow, e.palRow(y))
		case wide != nil:
			t.row(y, trow)
			e.thresholdWideRow(wide, trow, e.palRow(y))
		case e.pq != nil:
			t.row(y, trow)
			e.thresholdPaletteRow(trow)
		default:
			t.row(y, trow)
			e.thresholdLevelsRow(trow)
		}
		if !e.rowChecked() || e.stopped() {
			return false
		}
		if !direct || e.out.pal == nil {
			e.emit(y)
		}
	}
	return true
}

func (e *engine) thresholdLevelsRow(trow []int32) {
	if e.c == 1 {
		q := e.lq[0]
		for x, t := range trow {
			e.idx[x] = uint8(q.threshold(e.work[x], t))
		}
		return
	}
	qr, qg, qb := e.lq[0], e.lq[1], e.lq[2]
	for x, t := range trow {
		w, id := e.work[3*x:3*x+3:3*x+3], e.idx[3*x:3*x+3:3*x+3]
		id[0] = uint8(qr.threshold(w[0], t))
		id[1] = uint8(qg.threshold(w[1], t))
		id[2] = uint8(qb.threshold(w[2], t))
	}
}

func (e *engine) thresholdPaletteRow(trow []int32) {
	sp := int64(e.pq.spread)
	for x, t := range trow {
		off := int32((int64(t-32768) * sp) >> 16)
		w := e.work[3*x : 3*x+3 : 3*x+3]
		e.idx[x] = uint8(e.pq.nearest(clampWork(w[0]+off), clampWork(w[1]+off), clampWork(w[2]+off)))
	}
}

// orderedLUT maps 8-bit source values straight to the level below and the
// fraction of the way to the next level, per channel, so that threshold
// dithering of three channels needs no working values.
type orderedLUT struct {
	k [3][256]uint8
	f [3][256]int32 // 0..65535
	// packed holds, for a paletted result, the level below times the
	// channel's palette multiplier in the high 16 bits and f in the low.
	packed [3][256]int32
	mul    [3]int32
}

func newOrderedLUT(e *engine) *orderedLUT {
	l := &orderedLUT{}
	for ch := range 3 {
		q := e.lq[ch]
		for v := range 256 {
			c := e.sp.toWork[v]
			k := int(q.floor[c>>bucketShift])
			if c >= q.lv[k+1] {
				k++
			}
			l.k[ch][v] = uint8(k)
			l.f[ch][v] = int32((int64(c-q.lv[k]) * q.inv[k]) >> 16)
			l.mul[ch] = int32(e.out.mul[ch])
			l.packed[ch][v] = int32(k)*l.mul[ch]<<16 | l.f[ch][v]
		}
	}
	return l
}

// thresholdRGBRow dithers the current source row on three channels of
// levels with the thresholds trow, writing palette indices to pal when the
// result is paletted, else levels to e.idx.
func (e *engine) thresholdRGBRow(l *orderedLUT, trow []int32, pal []uint8) {
	if pal != nil && e.kind == alphaOpaque {
		thresholdRGBOpaque(l, e.row, trow, pal)
		return
	}
	m0, m1 := e.out.mul[0], e.out.mul[1]
	for x, t := range trow {
		s := e.row[4*x : 4*x+4 : 4*x+4]
		// A level up when the fraction exceeds the threshold.
		kr := int(l.k[0][s[0]]) - int((t-l.f[0][s[0]])>>31)
		kg := int(l.k[1][s[1]]) - int((t-l.f[1][s[1]])>>31)
		kb := int(l.k[2][s[2]]) - int((t-l.f[2][s[2]])>>31)
		switch {
		case pal == nil:
			id := e.idx[3*x : 3*x+3 : 3*x+3]
			id[0], id[1], id[2] = uint8(kr), uint8(kg), uint8(kb)
		case e.kind != alphaOpaque && s[3] == 0:
			pal[x] = e.out.transp
		default:
			pal[x] = uint8(kr*m0 + kg*m1 + kb)
		}
	}
}

// thresholdWideRow is thresholdRGBRow for a 16-bit source (e.row16).
func (e *engine) thresholdWideRow(l *wideLUT, trow []int32, pal []uint8) {
	pr, pg, pb := l.packed[0], l.packed[1], l.packed[2]
	mr, mg, mb := l.mul[0], l.mul[1], l.mul[2]
	row := e.row16[:4*len(trow)]
	for x, t := range trow {
		s := row[4*x : 4*x+4 : 4*x+4]
		r, g, b := pr[s[0]], pg[s[1]], pb[s[2]]
		// The level below, plus one when the fraction exceeds the threshold.
		kr, kg, kb := r>>16-(t-r&0xffff)>>31, g>>16-(t-g&0xffff)>>31, b>>16-(t-b&0xffff)>>31
		switch {
		case pal == nil:
			id := e.idx[3*x : 3*x+3 : 3*x+3]
			id[0], id[1], id[2] = uint8(kr), uint8(kg), uint8(kb)
		case e.kind != alphaOpaque && s[3] < 0x100:
			pal[x] = e.out.transp
		default:
			pal[x] = uint8(kr*mr + kg*mg + kb*mb)
		}
	}
}

// minWideLUTPixels is the smallest image for which a wideLUT is built:
// building it costs about as much as dithering this many pixels without.
const minWideLUTPixels = 1 << 16

// wideLUT is orderedLUT for 16-bit sources: for each channel and 16-bit
// value, the level below in the high 16 bits and the fraction of the way
// to the next level (0..65535) in the low 16. Channels with the same
// number of levels share a table.
type wideLUT struct {
	packed [3]*[65536]int32
	mul    [3]int32 // each channel's palette-index multiplier
}

// newWideLUT builds the tables of e's levels in e's colour space.
func newWideLUT(e *engine) *wideLUT {
	l := &wideLUT{}
	tw := e.sp.toWork16()
	for ch := range 3 {
		q := e.lq[ch]
		l.mul[ch] = int32(e.out.mul[ch])
		if ch > 0 && q.n == e.lq[ch-1].n {
			l.packed[ch] = l.packed[ch-1]
			continue
		}
		p := new([65536]int32)
		for v, c := range tw {
			k := q.threshold(c, 65535) // the level below: no fraction exceeds 65535
			p[v] = int32(k)<<16 | int32((int64(c-q.lv[k])*q.inv[k])>>16)
		}
		l.packed[ch] = p
	}
	return l
}

// thresholdRGBOpaque is thresholdRGBRow for an opaque row and a paletted
// result, the common case: one table load per channel.
func thresholdRGBOpaque(l *orderedLUT, row []uint8, trow []int32, pal []uint8) {
	pr, pg, pb := &l.packed[0], &l.packed[1], &l.packed[2]
	mr, mg, mb := l.mul[0], l.mul[1], l.mul[2]
	pal = pal[:len(trow)]
	for x, t := range trow {
		s := row[4*x : 4*x+3 : 4*x+3]
		r, g, b := pr[s[0]], pg[s[1]], pb[s[2]]
		// (t - f) >> 31 is -1 when the fraction f exceeds the threshold.
		code := r>>16 + (t-r&0xffff)>>31&mr + g>>16 + (t-g&0xffff)>>31&mg + b>>16 + (t-b&0xffff)>>31&mb
		pal[x] = uint8(code)
	}
}

// maxTableSide is the largest matrix side for which thresholdTable is
// used: it holds side*side*3*256 bytes.
const maxTableSide = 16

// thresholdTable holds, for every cell of a small threshold matrix, every
// channel and every 8-bit value, the value's share of the palette index:
// its level times the channel's multiplier. A pixel then costs three
// look-ups and two additions.
type thresholdTable struct {
	side  int
	cells [][3][256]uint8
}

func newThresholdTable(l *orderedLUT, t *thresholds) *thresholdTable {
	tt := &thresholdTable{side: t.side, cells: make([][3][256]uint8, len(t.cells))}
	for i, th := range t.cells {
		for ch := range 3 {
			for v := range 256 {
				k := int32(l.k[ch][v])
				if l.f[ch][v] > th {
					k++
				}
				tt.cells[i][ch][v] = uint8(k * l.mul[ch])
			}
		}
	}
	return tt
}

// row dithers source row y (opaque) into the paletted row pal.
func (tt *thresholdTable) row(y int, row, pal []uint8) {
	cells := tt.cells[(y%tt.side)*tt.side : (y%tt.side+1)*tt.side]
	mask := tt.side - 1 // sides are powers of two
	pal = pal[:len(row)/4]
	for x := range pal {
		c := &cells[x&mask]
		s := row[4*x : 4*x+3 : 4*x+3]
		pal[x] = c[0][s[0]] + c[1][s[1]] + c[2][s[2]]
	}
}
