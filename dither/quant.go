package dither

import (
	"image/color"
	"math"
	"slices"
	"sync"
)

// Working values are fixed point in [0, workMax], either gamma-encoded
// sRGB or linear light: 16 bits of colour plus fracBits fractional bits
// that keep diffused error precise.
const (
	fracBits    = 4
	workMax     = 65535 << fracBits
	bucketShift = 4 + fracBits // working value to a 4096-entry table index
)

// sentinel is larger than any working value.
const sentinel = math.MaxInt32

// space holds the conversion tables of one colour space.
type space struct {
	toWork [256]int32  // 8-bit sRGB to working value
	toSRGB [4096]uint8 // working value >> 4 to 8-bit sRGB
	luma   [3]int64    // luminance weights, sum 65536
	cs     ColorSpace  // which space
	once   sync.Once   // guards the tables

	grid      cellBounds // the palette lookup's grid (see cells)
	cellsOnce sync.Once  // guards grid

	wide     *[65536]int32 // 16-bit sRGB to working value (see toWork16)
	wideOnce sync.Once     // guards wide
}

var spaces = [2]space{{cs: Linear}, {cs: SRGB}}

// spaceFor returns the tables of cs, computed on first use.
func spaceFor(cs ColorSpace) *space {
	sp := &spaces[cs]
	sp.once.Do(sp.init)
	return sp
}

func (sp *space) init() {
	if sp.cs == SRGB {
		sp.luma = [3]int64{19595, 38470, 7471} // Rec. 601 luma, as color.GrayModel
		for i := range sp.toWork {
			sp.toWork[i] = int32(i) * 257 << fracBits
		}
		for i := range sp.toSRGB {
			sp.toSRGB[i] = uint8((i*16 + 8) / 257)
		}
		return
	}
	sp.luma = [3]int64{13933, 46871, 4732} // Rec. 709 luminance
	for i := range sp.toWork {
		sp.toWork[i] = linearWork(float64(i) / 255)
	}
	for i := range sp.toSRGB {
		sp.toSRGB[i] = uint8(math.Round(linearToSRGB(float64(i*16+8)/65535) * 255))
	}
}

// toWork16 returns the table from 16-bit sRGB values to working values,
// computed on first use: only 16-bit sources need it. Its entry for v*257
// equals toWork[v] (v/255 and v*257/65535 are the same float64), so a
// 16-bit image of 8-bit values dithers exactly as its 8-bit form.
func (sp *space) toWork16() *[65536]int32 {
	sp.wideOnce.Do(func() {
		t := new([65536]int32)
		for i := range t {
			if sp.cs == SRGB {
				t[i] = int32(i) << fracBits
			} else {
				t[i] = linearWork(float64(i) / 65535)
			}
		}
		sp.wide = t
	})
	return sp.wide
}

// linearWork returns the working value of the sRGB value v in [0, 1] in
// linear light.
func linearWork(v float64) int32 {
	return int32(math.Round(srgbToLinear(v) * workMax))
}

func srgbToLinear(v float64) float64 {
	if v <= 0.04045 {
		return v / 12.92
	}
	return math.Pow((v+0.055)/1.055, 2.4)
}

func linearToSRGB(v float64) float64 {
	v = min(max(v, 0), 1)
	if v <= 0.0031308 {
		return v * 12.92
	}
	return 1.055*math.Pow(v, 1/2.4) - 0.055
}

// clampWork clamps v to [0, workMax].
// It is branch-free: dithered values cross the bounds unpredictably.
func clampWork(v int32) int32 {
	v &^= v >> 31 // max(v, 0)
	d := workMax - v
	return v + d&(d>>31) // min(v, workMax)
}

// levelQuant quantises one channel to n evenly spaced 8-bit output levels.
type levelQuant struct {
	n     int
	lv    [257]int32  // working value of each level; lv[n] is sentinel
	thr   [256]int32  // values >= thr[k] are nearer level k+1; thr[n-1] is sentinel
	near  [4096]uint8 // nearest level at the start of each table bucket
	floor [4096]uint8 // last level <= the start of each bucket
	inv   [256]int64  // 2^32 / (lv[k+1]-lv[k]); 0 for the last level
	out8  [256]uint8  // 8-bit output value of each level
}

// newLevelQuant builds the quantiser for n levels in space sp.
func newLevelQuant(n int, sp *space) *levelQuant {
	q := &levelQuant{n: n}
	for k := 0; k < n; k++ {
		q.out8[k] = uint8(math.Round(float64(k*255) / float64(n-1)))
		q.lv[k] = sp.toWork[q.out8[k]]
		if sp.cs == SRGB {
			q.lv[k] = int32(math.Round(float64(k*workMax) / float64(n-1)))
		}
	}
	q.lv[n] = sentinel
	for k := 0; k < n-1; k++ {
		q.thr[k] = (q.lv[k] + q.lv[k+1] + 1) / 2
		q.inv[k] = (1 << 32) / int64(q.lv[k+1]-q.lv[k])
	}
	q.thr[n-1] = sentinel
	for b := range q.near {
		v := int32(b << bucketShift)
		q.near[b] = uint8(q.slowNearest(v))
		f := 0
		for q.lv[f+1] <= v {
			f++
		}
		q.floor[b] = uint8(f)
	}
	return q
}

func (q *levelQuant) slowNearest(v int32) int {
	k := 0
	for v >= q.thr[k] {
		k++
	}
	return k
}

// nearest returns the level nearest to v (ties go up). A table bucket
// holds at most one threshold (levels are more than a bucket apart), so
// one comparison finishes the table lookup; it compiles without a branch.
func (q *levelQuant) nearest(v int32) int {
	c := clampWork(v)
	k := int(q.near[c>>bucketShift])
	return k - int((q.thr[k]-1-c)>>31) // k+1 when c >= thr[k], without a branch
}

// threshold returns the level above v when the fraction of the way from
// the level below exceeds t (0..65535), else the level below.
func (q *levelQuant) threshold(v, t int32) int {
	c := clampWork(v)
	k := int(q.floor[c>>bucketShift])
	if c >= q.lv[k+1] {
		k++
	}
	if int32((int64(c-q.lv[k])*q.inv[k])>>16) > t {
		k++
	}
	return k
}

// gridBits is the number of bits per channel of the palette lookup's grid.
const gridBits = 5

// paletteQuant finds the nearest colour of a fixed palette. The colours
// that can be nearest to some point of a cell of a grid over sRGB
// (gridBits per channel) are worked out when a cell is first met; a
// lookup then measures the distance to those few candidates only, so
// the answer is exact.
type paletteQuant struct {
	work   [][3]int32    // palette colours in working values
	colors []color.NRGBA // palette colours, opaque
	// distinct are the indices of the first of each distinct colour.
	distinct []uint8
	// cells holds, per grid cell, 0 until it is worked out, then its
	// candidates: in the low bits the colour's index with cellOne, the two
	// indices (the first in the low byte) with cellTwo, or the index of
	// their list in lists with cellMany. It is small, so that it stays in
	// the processor's cache, and a cell near a boundary between two
	// colours needs no other lookup.
	cells [1 << (3 * gridBits)]uint32
	// lists are the cells' longer lists of candidates: offset and end in
	// cands.
	lists  [][2]int32
	cands  []uint8 // palette indices, by list, in palette order
	bounds *cellBounds
	sp     *space // colour space
	spread int32  // typical distance between neighbouring colours
}

// The kinds of entry of paletteQuant.cells.
const (
	cellOne  = 1 << 30
	cellTwo  = 2 << 30
	cellMany = 3 << 30
	cellKind = 3 << 30
)

// newPaletteQuant builds the quantiser of palette p in space sp.
func newPaletteQuant(p color.Palette, sp *space) *paletteQuant {
	pq := &paletteQuant{sp: sp, bounds: sp.cells()}
	for i, c := range p {
		n := color.NRGBAModel.Convert(c).(color.NRGBA)
		n.A = 255
		w := [3]int32{sp.toWork[n.R], sp.toWork[n.G], sp.toWork[n.B]}
		if !slices.Contains(pq.work, w) {
			pq.distinct = append(pq.distinct, uint8(i))
		}
		pq.colors = append(pq.colors, n)
		pq.work = append(pq.work, w)
	}
	pq.spread = pq.meanSpacing()
	return pq
}

// meanSpacing returns the mean over the colours of the largest channel
// difference to the nearest other colour (workMax for one colour).
func (pq *paletteQuant) meanSpacing() int32 {
	if len(pq.work) < 2 {
		return workMax
	}
	var sum int64
	for i, a := range pq.work {
		best := int64(math.MaxInt64)
		var bestD int32
		for j, b := range pq.work {
			if i == j {
				continue
			}
			if d := dist2(a, b); d < best && d > 0 {
				best = d
				bestD = max(abs32(a[0]-b[0]), abs32(a[1]-b[1]), abs32(a[2]-b[2]))
			}
		}
		sum += int64(bestD)
	}
	return max(int32(sum/int64(len(pq.work))), 1)
}

func abs32(v int32) int32 {
	if v < 0 {
		return -v
	}
	return v
}

func dist2(a, b [3]int32) int64 {
	dr, dg, db := int64(a[0]-b[0]), int64(a[1]-b[1]), int64(a[2]-b[2])
	return dr*dr + dg*dg + db*db
}

// nearest returns the index of the palette colour nearest to (r, g, b),
// each in [0, workMax], the first such colour on a tie.
func (pq *paletteQuant) nearest(r, g, b int32) int {
	key := pq.bounds.cell(r)<<(2*gridBits) | pq.bounds.cell(g)<<gridBits | pq.bounds.cell(b)
	c := pq.cells[key]
	if c == 0 {
		c = pq.candidates(key)
	}
	v := [3]int32{r, g, b}
	switch c & cellKind {
	case cellOne:
		return int(uint8(c))
	case cellTwo:
		i, j := uint8(c), uint8(c>>8)
		if dist2(v, pq.work[j]) < dist2(v, pq.work[i]) {
			return int(j)
		}
		return int(i)
	}
	l := pq.lists[c&^cellKind]
	best, bestD := 0, int64(math.MaxInt64)
	for _, i := range pq.cands[l[0]:l[1]] {
		if d := dist2(v, pq.work[i]); d < bestD {
			best, bestD = int(i), d
		}
	}
	return best
}

// candidates works out the cell's entry: the distinct palette colours
// whose distance to the nearest point of the cell is at most the smallest
// distance within which some colour is from every point of the cell. The
// nearest colour of any point of the cell is among them.
func (pq *paletteQuant) candidates(key int) uint32 {
	var lo, hi [3]int32
	for ch := range lo {
		i := key >> ((2 - ch) * gridBits) & (1<<gridBits - 1)
		lo[ch], hi[ch] = pq.bounds.lo[i], pq.bounds.hi[i]
	}
	reach := int64(math.MaxInt64)
	for _, i := range pq.distinct {
		reach = min(reach, farthest2(lo, hi, pq.work[i]))
	}
	off := len(pq.cands)
	for _, i := range pq.distinct {
		if nearest2(lo, hi, pq.work[i]) <= reach {
			pq.cands = append(pq.cands, i)
		}
	}
	found := pq.cands[off:]
	switch len(found) {
	case 1:
		pq.cells[key] = cellOne | uint32(found[0])
	case 2:
		pq.cells[key] = cellTwo | uint32(found[1])<<8 | uint32(found[0])
	default:
		pq.cells[key] = cellMany | uint32(len(pq.lists))
		pq.lists = append(pq.lists, [2]int32{int32(off), int32(len(pq.cands))})
		return pq.cells[key]
	}
	pq.cands = pq.cands[:off]
	return pq.cells[key]
}

// nearest2 and farthest2 return the squared distance from p to the
// nearest and the farthest point of the box [lo, hi].
func nearest2(lo, hi, p [3]int32) int64 {
	var d int64
	for ch := range p {
		e := int64(max(lo[ch]-p[ch], p[ch]-hi[ch], 0))
		d += e * e
	}
	return d
}

func farthest2(lo, hi, p [3]int32) int64 {
	var d int64
	for ch := range p {
		e := int64(max(p[ch]-lo[ch], hi[ch]-p[ch]))
		d += e * e
	}
	return d
}

// cellBounds splits the working values of a colour space into the cells
// of a grid over 8-bit sRGB (gridBits per channel).
type cellBounds struct {
	of     [4096]uint8          // cell of each table bucket
	lo, hi [1 << gridBits]int32 // the working values of each cell
}

// cells returns the space's grid, computed on first use.
func (sp *space) cells() *cellBounds {
	sp.cellsOnce.Do(func() {
		cb := &sp.grid
		for i := range cb.lo {
			cb.lo[i], cb.hi[i] = sentinel, -1
		}
		for b := range cb.of {
			i := sp.toSRGB[b] >> (8 - gridBits)
			cb.of[b] = i
			lo := int32(b << bucketShift)
			cb.lo[i] = min(cb.lo[i], lo)
			cb.hi[i] = max(cb.hi[i], min(lo+1<<bucketShift-1, workMax))
		}
	})
	return &sp.grid
}

// cell returns the cell of a working value in [0, workMax].
func (cb *cellBounds) cell(v int32) int { return int(cb.of[v>>bucketShift]) }
