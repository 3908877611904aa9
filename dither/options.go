package dither

import (
	"errors"
	"fmt"
	"image/color"
	"strings"
)

// ColorSpace is the space in which quantisation error is measured and
// diffused. The output colours are the same in both.
type ColorSpace int

const (
	// Linear measures error in linear light (the default). It keeps the
	// perceived brightness of the dithered image close to the original.
	Linear ColorSpace = iota
	// SRGB measures error on the gamma-encoded sRGB values, as ImageMagick
	// and the old dithering service do. Results look slightly darker.
	SRGB
)

// String returns "linear" or "srgb".
func (c ColorSpace) String() string {
	switch c {
	case Linear:
		return "linear"
	case SRGB:
		return "srgb"
	}
	return fmt.Sprintf("ColorSpace(%d)", int(c))
}

// ParseColorSpace parses "linear" or "srgb" (case-insensitively; the empty
// string means Linear).
func ParseColorSpace(s string) (ColorSpace, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "linear":
		return Linear, nil
	case "srgb":
		return SRGB, nil
	}
	return 0, fmt.Errorf("unknown colour space %q (valid: linear, srgb)", s)
}

// Limits of Options.
const (
	// MinLevels is the fewest levels per channel.
	MinLevels = 2
	// MaxLevels is the most levels per channel.
	MaxLevels = 256
	// DefaultLevels is the levels per channel when Options.Levels is 0.
	DefaultLevels = 2
	// MaxPaletteSize is the most colours in a palette.
	MaxPaletteSize = 256
	// MaxWorkers is the most goroutines Options.Workers may ask for.
	MaxWorkers = 256

	defaultStrength = 1.0
)

// Options configure Dither. The zero value is valid: Floyd-Steinberg,
// 2 levels per channel (8 colours), linear light, full strength.
type Options struct {
	// Algorithm is the dithering method; the zero value is FloydSteinberg.
	Algorithm Algorithm
	// Levels is the number of evenly spaced levels per channel, 2..256
	// (the old service's "channels"); 0 means DefaultLevels.
	Levels int
	// LevelsR, LevelsG and LevelsB override Levels for one channel when
	// not 0 (ignored with Grayscale).
	LevelsR, LevelsG, LevelsB int
	// Grayscale converts the image to luminance first; with levels the
	// output has Levels shades of grey.
	Grayscale bool
	// Palette names a fixed palette (see PaletteNames); it replaces levels.
	Palette string
	// CustomPalette is a palette of 1 to 256 colours (alpha is ignored);
	// it replaces levels and cannot be combined with Palette.
	CustomPalette color.Palette
	// Serpentine scans odd rows right to left (error diffusion only).
	Serpentine bool
	// Strength scales the diffused error or the threshold spread, in
	// [0, 1]; 0 means the default, 1. Use the None algorithm for no dithering.
	Strength float64
	// ColorSpace is where error is measured; the zero value is Linear.
	ColorSpace ColorSpace
	// Seed seeds the Random algorithm; equal seeds give equal results.
	Seed int64
	// Workers is how many goroutines may dither one image; 0 and 1 mean
	// one. Only two-level Floyd-Steinberg left to right, at full strength,
	// on an opaque 8-bit image, uses more (a wavefront over rows); the
	// result is the same whatever the number.
	Workers int
}

// ErrInvalidOptions is wrapped by every error that Options.Validate returns.
var ErrInvalidOptions = errors.New("invalid dither options")

// Validate reports the first problem with o, wrapping ErrInvalidOptions.
func (o Options) Validate() error {
	if err := o.validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidOptions, err)
	}
	return nil
}

func (o Options) validate() error {
	if o.Algorithm < 0 || o.Algorithm >= numAlgorithms {
		return fmt.Errorf("unknown algorithm %d", int(o.Algorithm))
	}
	for _, l := range []struct {
		name string
		v    int
	}{{"levels", o.Levels}, {"red levels", o.LevelsR}, {"green levels", o.LevelsG}, {"blue levels", o.LevelsB}} {
		if l.v != 0 && (l.v < MinLevels || l.v > MaxLevels) {
			return fmt.Errorf("%s must be between %d and %d, got %d", l.name, MinLevels, MaxLevels, l.v)
		}
	}
	if o.Strength < 0 || o.Strength > 1 || o.Strength != o.Strength {
		return fmt.Errorf("strength must be between 0 and 1, got %v", o.Strength)
	}
	if o.Workers < 0 || o.Workers > MaxWorkers {
		return fmt.Errorf("workers must be between 0 and %d, got %d", MaxWorkers, o.Workers)
	}
	if o.ColorSpace != Linear && o.ColorSpace != SRGB {
		return fmt.Errorf("unknown colour space %d", int(o.ColorSpace))
	}
	return o.validatePalette()
}

func (o Options) validatePalette() error {
	if o.Palette != "" && o.CustomPalette != nil {
		return errors.New("palette and custom palette are exclusive")
	}
	if o.Palette != "" {
		if _, ok := NamedPalette(o.Palette); !ok {
			return fmt.Errorf("unknown palette %q (valid: %s)", o.Palette, strings.Join(PaletteNames(), ", "))
		}
	}
	if o.CustomPalette != nil {
		if len(o.CustomPalette) == 0 {
			return errors.New("custom palette is empty")
		}
		if len(o.CustomPalette) > MaxPaletteSize {
			return fmt.Errorf("custom palette has %d colours, at most %d allowed", len(o.CustomPalette), MaxPaletteSize)
		}
		for i, c := range o.CustomPalette {
			if c == nil {
				return fmt.Errorf("custom palette colour %d is nil", i)
			}
		}
	}
	return nil
}

// channelLevels returns the levels of red, green and blue.
func (o Options) channelLevels() [3]int {
	base := o.Levels
	if base == 0 {
		base = DefaultLevels
	}
	l := [3]int{base, base, base}
	for i, v := range []int{o.LevelsR, o.LevelsG, o.LevelsB} {
		if v != 0 && !o.Grayscale {
			l[i] = v
		}
	}
	return l
}

// strength returns the strength as a fixed-point fraction of 256.
func (o Options) strength() int32 {
	s := o.Strength
	if s == 0 {
		s = defaultStrength
	}
	return int32(s*256 + 0.5)
}

// palette returns the fixed palette, or nil when quantising to levels.
func (o Options) palette() color.Palette {
	if o.CustomPalette != nil {
		return o.CustomPalette
	}
	if o.Palette != "" {
		p, _ := NamedPalette(o.Palette)
		return p
	}
	return nil
}
