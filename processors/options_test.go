package processors_test

import (
	"slices"
	"testing"

	"github.com/imageservice/imageservice/dither"
	"github.com/imageservice/imageservice/images"
	"github.com/imageservice/imageservice/processors"
)

// The domain accepts exactly the palettes and algorithms the engine has,
// so a dither request is refused at once rather than failing later.
func TestDomainNamesTheEnginesOptions(t *testing.T) {
	if got, want := images.Palettes(), dither.PaletteNames(); !slices.Equal(got, want) {
		t.Errorf("images.Palettes() = %v, the engine has %v", got, want)
	}
	for _, alg := range images.Algorithms() {
		if _, err := processors.Options(images.Dither{Options: images.DitherOptions{Levels: 2, Algorithm: alg}}); err != nil {
			t.Errorf("algorithm %s: %v", alg, err)
		}
	}
	for _, p := range images.Palettes() {
		if _, err := processors.Options(images.Dither{Options: images.DitherOptions{Algorithm: images.DefaultAlgorithm, Palette: p}}); err != nil {
			t.Errorf("palette %s: %v", p, err)
		}
	}
}
