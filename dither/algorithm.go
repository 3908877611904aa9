package dither

import (
	"fmt"
	"strings"
)

// Algorithm selects how quantisation error is hidden: error diffusion,
// an ordered threshold map, random thresholds or none at all.
// The zero value is FloydSteinberg.
type Algorithm int

// The algorithms, in the order Algorithms lists them.
const (
	// FloydSteinberg diffuses error to 4 neighbours (7 3 5 1 /16); the default.
	FloydSteinberg Algorithm = iota
	// JarvisJudiceNinke diffuses error to 12 neighbours over 3 rows (/48).
	JarvisJudiceNinke
	// Stucki diffuses error to 12 neighbours over 3 rows (/42).
	Stucki
	// Burkes diffuses error to 7 neighbours over 2 rows (/32).
	Burkes
	// Sierra (Sierra-3) diffuses error to 10 neighbours over 3 rows (/32).
	Sierra
	// SierraTwoRow diffuses error to 7 neighbours over 2 rows (/16).
	SierraTwoRow
	// SierraLite diffuses error to 3 neighbours (/4).
	SierraLite
	// Atkinson diffuses 6/8 of the error to 6 neighbours over 3 rows.
	Atkinson
	// Bayer2x2 is ordered dithering with the 2x2 Bayer matrix.
	Bayer2x2
	// Bayer4x4 is ordered dithering with the 4x4 Bayer matrix.
	Bayer4x4
	// Bayer8x8 is ordered dithering with the 8x8 Bayer matrix.
	Bayer8x8
	// Bayer16x16 is ordered dithering with the 16x16 Bayer matrix.
	Bayer16x16
	// BlueNoise is ordered dithering with a 64x64 void-and-cluster blue-noise mask.
	BlueNoise
	// Random compares each pixel with a random threshold from Options.Seed.
	Random
	// None takes the nearest level only (posterize).
	None

	numAlgorithms // the number of algorithms
)

var algorithmNames = [numAlgorithms]string{
	"floyd-steinberg", "jarvis-judice-ninke", "stucki", "burkes", "sierra",
	"sierra-two-row", "sierra-lite", "atkinson", "bayer-2x2", "bayer-4x4",
	"bayer-8x8", "bayer-16x16", "blue-noise", "random", "none",
}

// Algorithms returns every algorithm, the default first.
func Algorithms() []Algorithm {
	all := make([]Algorithm, numAlgorithms)
	for i := range all {
		all[i] = Algorithm(i)
	}
	return all
}

// AlgorithmNames returns the kebab-case names of every algorithm.
func AlgorithmNames() []string {
	return append([]string(nil), algorithmNames[:]...)
}

// String returns the kebab-case name, such as "floyd-steinberg".
func (a Algorithm) String() string {
	if a < 0 || a >= numAlgorithms {
		return fmt.Sprintf("Algorithm(%d)", int(a))
	}
	return algorithmNames[a]
}

// EnumName returns the GraphQL enum spelling, such as "FLOYD_STEINBERG".
func (a Algorithm) EnumName() string {
	return strings.ToUpper(strings.ReplaceAll(a.String(), "-", "_"))
}

// ParseAlgorithm parses a kebab-case name ("bayer-8x8") or the GraphQL
// enum spelling ("BAYER_8X8"), case-insensitively, "_" and "-" alike.
// The empty string means the default, FloydSteinberg.
func ParseAlgorithm(s string) (Algorithm, error) {
	norm := strings.ToLower(strings.ReplaceAll(strings.TrimSpace(s), "_", "-"))
	if norm == "" {
		return FloydSteinberg, nil
	}
	for i, name := range algorithmNames {
		if name == norm {
			return Algorithm(i), nil
		}
	}
	return 0, fmt.Errorf("unknown dither algorithm %q (valid: %s)", s, strings.Join(algorithmNames[:], ", "))
}

// MarshalText implements encoding.TextMarshaler with the kebab-case name.
func (a Algorithm) MarshalText() ([]byte, error) {
	if a < 0 || a >= numAlgorithms {
		return nil, fmt.Errorf("invalid dither algorithm %d", int(a))
	}
	return []byte(a.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler with ParseAlgorithm.
func (a *Algorithm) UnmarshalText(text []byte) error {
	v, err := ParseAlgorithm(string(text))
	if err != nil {
		return err
	}
	*a = v
	return nil
}

// IsErrorDiffusion reports whether a diffuses quantisation error to
// neighbouring pixels (as opposed to thresholding each pixel alone).
func (a Algorithm) IsErrorDiffusion() bool {
	return a >= FloydSteinberg && a <= Atkinson
}

// tap is one neighbour of an error-diffusion kernel: the offset from the
// current pixel (dx along the scan direction, dy rows below) and its weight.
type tap struct {
	dx, dy, w int
}

// kernel is an error-diffusion kernel: its taps and the divisor of the weights.
type kernel struct {
	taps    []tap
	divisor int
}

// rows returns how many error rows the kernel touches, the current one included.
func (k kernel) rows() int {
	n := 1
	for _, t := range k.taps {
		n = max(n, t.dy+1)
	}
	return n
}

var kernels = map[Algorithm]kernel{
	FloydSteinberg: {[]tap{{1, 0, 7}, {-1, 1, 3}, {0, 1, 5}, {1, 1, 1}}, 16},
	JarvisJudiceNinke: {[]tap{{1, 0, 7}, {2, 0, 5},
		{-2, 1, 3}, {-1, 1, 5}, {0, 1, 7}, {1, 1, 5}, {2, 1, 3},
		{-2, 2, 1}, {-1, 2, 3}, {0, 2, 5}, {1, 2, 3}, {2, 2, 1}}, 48},
	Stucki: {[]tap{{1, 0, 8}, {2, 0, 4},
		{-2, 1, 2}, {-1, 1, 4}, {0, 1, 8}, {1, 1, 4}, {2, 1, 2},
		{-2, 2, 1}, {-1, 2, 2}, {0, 2, 4}, {1, 2, 2}, {2, 2, 1}}, 42},
	Burkes: {[]tap{{1, 0, 8}, {2, 0, 4},
		{-2, 1, 2}, {-1, 1, 4}, {0, 1, 8}, {1, 1, 4}, {2, 1, 2}}, 32},
	Sierra: {[]tap{{1, 0, 5}, {2, 0, 3},
		{-2, 1, 2}, {-1, 1, 4}, {0, 1, 5}, {1, 1, 4}, {2, 1, 2},
		{-1, 2, 2}, {0, 2, 3}, {1, 2, 2}}, 32},
	SierraTwoRow: {[]tap{{1, 0, 4}, {2, 0, 3},
		{-2, 1, 1}, {-1, 1, 2}, {0, 1, 3}, {1, 1, 2}, {2, 1, 1}}, 16},
	SierraLite: {[]tap{{1, 0, 2}, {-1, 1, 1}, {0, 1, 1}}, 4},
	Atkinson: {[]tap{{1, 0, 1}, {2, 0, 1},
		{-1, 1, 1}, {0, 1, 1}, {1, 1, 1}, {0, 2, 1}}, 8},
}
