package dither

import (
	"image/color"
	"math"
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
		sp.toWork[i] = int32(math.Round(srgbToLinear(float64(i)/255) * workMax))
	}
	for i := range sp.toSRGB {
		sp.toSRGB[i] = uint8(math.Round(linearToSRGB(float64(i*16+8)/65535) * 255))
	}
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

// paletteQuant finds the nearest colour of a fixed palette, with a lazily
// filled cache over a 32x32x32 grid of sRGB colours.
type paletteQuant struct {
	work   [][3]int32    // palette colours in working values
	colors []color.NRGBA // palette colours, opaque
	cache  [32768]uint16 // 1 + nearest index of the grid cell, or 0
	sp     *space        // colour space
	spread int32         // typical distance between neighbouring colours
}

// newPaletteQuant builds the quantiser of palette p in space sp.
func newPaletteQuant(p color.Palette, sp *space) *paletteQuant {
	pq := &paletteQuant{sp: sp}
	for _, c := range p {
		n := color.NRGBAModel.Convert(c).(color.NRGBA)
		n.A = 255
		pq.colors = append(pq.colors, n)
		pq.work = append(pq.work, [3]int32{sp.toWork[n.R], sp.toWork[n.G], sp.toWork[n.B]})
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

// nearest returns the index of the palette colour nearest to (r, g, b).
func (pq *paletteQuant) nearest(r, g, b int32) int {
	t := &pq.sp.toSRGB
	key := int(t[clampWork(r)>>bucketShift]>>3)<<10 | int(t[clampWork(g)>>bucketShift]>>3)<<5 | int(t[clampWork(b)>>bucketShift]>>3)
	if v := pq.cache[key]; v != 0 {
		return int(v - 1)
	}
	centre := func(i int) int32 { return pq.sp.toWork[(i&31)<<3+4] }
	c := [3]int32{centre(key >> 10), centre(key >> 5), centre(key)}
	best, bestD := 0, int64(math.MaxInt64)
	for i, p := range pq.work {
		if d := dist2(c, p); d < bestD {
			best, bestD = i, d
		}
	}
	pq.cache[key] = uint16(best + 1)
	return best
}
