package dither

// blueNoiseSize is the side of the blue-noise mask.
const blueNoiseSize = 64

// blueNoiseMask returns the ranks (0..4095) of the 64x64 blue-noise mask,
// row-major. The mask was made by Ulichney's void-and-cluster method
// (voidAndCluster in bluenoise_gen_test.go) and is embedded in
// bluenoise_table.go; a test checks that the two agree.
func blueNoiseMask() []int {
	out := make([]int, len(blueNoiseTable))
	for i, r := range blueNoiseTable {
		out[i] = int(r)
	}
	return out
}
