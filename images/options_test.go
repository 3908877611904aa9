package images_test

import (
	"math"
	"testing"

	"github.com/imageservice/imageservice/images"
)

func TestDitherInputResolve(t *testing.T) {
	defaults := images.DitherOptions{Levels: 2, Algorithm: "floyd-steinberg", Strength: 1, ColorSpace: "linear"}
	tests := []struct {
		name  string
		in    images.DitherInput
		want  *images.DitherOptions
		code  string
		field string
	}{
		{name: "defaults", in: images.DitherInput{}, want: &defaults},
		{name: "levels 256", in: images.DitherInput{Levels: 256}, want: &images.DitherOptions{Levels: 256, Algorithm: "floyd-steinberg", Strength: 1, ColorSpace: "linear"}},
		{name: "levels 1", in: images.DitherInput{Levels: 1}, code: images.CodeInvalidLevels, field: "levels"},
		{name: "levels 257", in: images.DitherInput{Levels: 257}, code: images.CodeInvalidLevels, field: "levels"},
		{name: "negative levels", in: images.DitherInput{Levels: -3}, code: images.CodeInvalidLevels, field: "levels"},
		{name: "channel levels set levels", in: images.DitherInput{ChannelLevels: &images.ChannelLevels{R: 4, G: 8, B: 2}},
			want: &images.DitherOptions{Levels: 8, ChannelLevels: &images.ChannelLevels{R: 4, G: 8, B: 2}, Algorithm: "floyd-steinberg", Strength: 1, ColorSpace: "linear"}},
		{name: "channel level out of range", in: images.DitherInput{ChannelLevels: &images.ChannelLevels{R: 4, G: 1, B: 2}}, code: images.CodeInvalidLevels, field: "channelLevels.g"},
		{name: "enum algorithm", in: images.DitherInput{Algorithm: "BAYER_8X8"}, want: &images.DitherOptions{Levels: 2, Algorithm: "bayer-8x8", Strength: 1, ColorSpace: "linear"}},
		{name: "unknown algorithm", in: images.DitherInput{Algorithm: "magic"}, code: images.CodeUnknownAlgorithm, field: "algorithm"},
		{name: "strength 0", in: images.DitherInput{Strength: ptr(0.0)}, want: &images.DitherOptions{Levels: 2, Algorithm: "floyd-steinberg", Strength: 0, ColorSpace: "linear"}},
		{name: "strength negative", in: images.DitherInput{Strength: ptr(-0.1)}, code: images.CodeInvalidStrength, field: "strength"},
		{name: "strength above 1", in: images.DitherInput{Strength: ptr(1.01)}, code: images.CodeInvalidStrength, field: "strength"},
		{name: "strength NaN", in: images.DitherInput{Strength: ptr(math.NaN())}, code: images.CodeInvalidStrength, field: "strength"},
		{name: "linear", in: images.DitherInput{ColorSpace: "LINEAR"}, want: &images.DitherOptions{Levels: 2, Algorithm: "floyd-steinberg", Strength: 1, ColorSpace: "linear"}},
		{name: "bad colour space", in: images.DitherInput{ColorSpace: "cmyk"}, code: images.CodeInvalidColorSpace, field: "colorSpace"},
		{name: "palette", in: images.DitherInput{Palette: "gameboy"}, want: &images.DitherOptions{Levels: 2, Algorithm: "floyd-steinberg", Strength: 1, ColorSpace: "linear", Palette: "gameboy"}},
		{name: "unknown palette", in: images.DitherInput{Palette: "game-boy"}, code: images.CodeInvalidPalette, field: "palette"},
		{name: "bad palette", in: images.DitherInput{Palette: "../etc"}, code: images.CodeInvalidPalette, field: "palette"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.in.Resolve()
			wantCode(t, err, tt.code)
			if tt.code != "" {
				var de *images.Error
				if !asError(err, &de) || de.Field != tt.field {
					t.Fatalf("field = %+v, want %q", de, tt.field)
				}
				return
			}
			if !optionsEqual(got, *tt.want) {
				t.Fatalf("got %+v, want %+v", got, *tt.want)
			}
		})
	}
}

func TestAlgorithms(t *testing.T) {
	algs := images.Algorithms()
	if len(algs) != 15 || algs[0] != images.DefaultAlgorithm {
		t.Fatalf("Algorithms() = %v", algs)
	}
	for _, a := range algs {
		if !images.IsKnownAlgorithm(a) {
			t.Errorf("%q not known", a)
		}
	}
	algs[0] = "changed"
	if images.Algorithms()[0] != images.DefaultAlgorithm {
		t.Fatal("Algorithms returned shared slice")
	}
}

func optionsEqual(a, b images.DitherOptions) bool {
	if (a.ChannelLevels == nil) != (b.ChannelLevels == nil) {
		return false
	}
	if a.ChannelLevels != nil && *a.ChannelLevels != *b.ChannelLevels {
		return false
	}
	a.ChannelLevels, b.ChannelLevels = nil, nil
	return a == b
}
