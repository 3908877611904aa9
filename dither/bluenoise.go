package dither

import (
	"math"
	"sync"
)

// blueNoiseSize is the side of the blue-noise mask.
const blueNoiseSize = 64

var (
	blueNoiseOnce  sync.Once
	blueNoiseRanks []int
)

// blueNoiseMask returns the ranks (0..4095) of the 64x64 blue-noise mask,
// generated once by the void-and-cluster method.
func blueNoiseMask() []int {
	blueNoiseOnce.Do(func() { blueNoiseRanks = voidAndCluster(blueNoiseSize, 1.5) })
	return blueNoiseRanks
}

// vcField is a toroidal binary pattern with the Gaussian energy of its
// set pixels at every position.
type vcField struct {
	n      int
	on     []bool
	energy []float64
	lut    []float64 // Gaussian by toroidal offset, n*n
}

func newVCField(n int, sigma float64) *vcField {
	f := &vcField{n: n, on: make([]bool, n*n), energy: make([]float64, n*n), lut: make([]float64, n*n)}
	for dy := 0; dy < n; dy++ {
		for dx := 0; dx < n; dx++ {
			ty, tx := min(dy, n-dy), min(dx, n-dx)
			f.lut[dy*n+dx] = math.Exp(-float64(tx*tx+ty*ty) / (2 * sigma * sigma))
		}
	}
	return f
}

// set turns pixel i on or off and updates the energy.
func (f *vcField) set(i int, on bool) {
	f.on[i] = on
	sign := 1.0
	if !on {
		sign = -1
	}
	n := f.n
	iy, ix := i/n, i%n
	for y := 0; y < n; y++ {
		row := ((y - iy + n) % n) * n
		for x := 0; x < n; x++ {
			f.energy[y*n+x] += sign * f.lut[row+(x-ix+n)%n]
		}
	}
}

// extreme returns the set pixel of highest energy (cluster) or the unset
// pixel of lowest energy (void).
func (f *vcField) extreme(cluster bool) int {
	best, bestE := -1, 0.0
	for i, e := range f.energy {
		if f.on[i] != cluster {
			continue
		}
		if best < 0 || (cluster && e > bestE) || (!cluster && e < bestE) {
			best, bestE = i, e
		}
	}
	return best
}

// voidAndCluster returns the ranks of an n x n blue-noise mask (Ulichney's
// void-and-cluster method, seeded deterministically).
func voidAndCluster(n int, sigma float64) []int {
	f := newVCField(n, sigma)
	total := n * n
	ones := total / 10
	for placed, k := 0, uint64(0); placed < ones; k++ {
		i := int(mix(0x5eed, k) % uint64(total))
		if !f.on[i] {
			f.set(i, true)
			placed++
		}
	}
	for {
		c := f.extreme(true)
		f.set(c, false)
		v := f.extreme(false)
		f.set(v, true)
		if v == c {
			break
		}
	}
	proto := append([]bool(nil), f.on...)
	protoEnergy := append([]float64(nil), f.energy...)
	ranks := make([]int, total)
	for r := ones - 1; r >= 0; r-- {
		c := f.extreme(true)
		f.set(c, false)
		ranks[c] = r
	}
	copy(f.on, proto)
	copy(f.energy, protoEnergy)
	for r := ones; r < total; r++ {
		v := f.extreme(false)
		f.set(v, true)
		ranks[v] = r
	}
	return ranks
}
