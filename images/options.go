package images

import (
	"math"
	"slices"
	"strings"
)

// Defaults applied to a dither request when a field is not given.
const (
	DefaultLevels     = 2
	DefaultAlgorithm  = "floyd-steinberg"
	DefaultStrength   = 1.0
	DefaultColorSpace = ColorSpaceLinear // as the dither engine: keeps perceived brightness right
	MinLevels         = 2
	MaxLevels         = 256
	maxPaletteName    = 64
)

// Colour spaces a dither can work in.
const (
	ColorSpaceLinear = "linear"
	ColorSpaceSRGB   = "srgb"
)

var algorithms = []string{
	"floyd-steinberg", "jarvis-judice-ninke", "stucki", "burkes", "sierra",
	"sierra-two-row", "sierra-lite", "atkinson", "bayer-2x2", "bayer-4x4",
	"bayer-8x8", "bayer-16x16", "blue-noise", "random", "none",
}

// Algorithms returns the names of the dithering algorithms of the design, in
// kebab-case, default first.
func Algorithms() []string { return slices.Clone(algorithms) }

var palettes = []string{"black-white", "cga", "gameboy", "web-safe"}

// Palettes returns the names of the fixed palettes a dither may use, sorted.
func Palettes() []string { return slices.Clone(palettes) }

// IsKnownPalette reports whether name is one of Palettes().
func IsKnownPalette(name string) bool { return slices.Contains(palettes, name) }

// IsKnownAlgorithm reports whether name is one of Algorithms().
func IsKnownAlgorithm(name string) bool { return slices.Contains(algorithms, name) }

// ValidAlgorithm decides which algorithm names a dither request may use. It
// defaults to IsKnownAlgorithm; the service may set it once at start-up (for
// example to the dither package's registry). Not safe to change while
// commands are being decided.
var ValidAlgorithm = IsKnownAlgorithm

// ValidPalette decides which (well-formed) palette names a dither request
// may use. It defaults to IsKnownPalette; like ValidAlgorithm it may be set
// once at start-up, and nil accepts any well-formed name (lowercase
// letters, digits and '-', at most 64 bytes).
var ValidPalette = IsKnownPalette

// NormalizeAlgorithm turns enum or loose spellings ("FLOYD_STEINBERG",
// "Floyd Steinberg") into the kebab-case name ("floyd-steinberg").
func NormalizeAlgorithm(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	return strings.NewReplacer("_", "-", " ", "-").Replace(s)
}

// DitherInput is the input of a dither request; zero values mean "the
// default" (Strength uses a pointer because 0 is a valid strength).
type DitherInput struct {
	Levels        int
	ChannelLevels *ChannelLevels
	Algorithm     string
	Serpentine    bool
	Strength      *float64
	ColorSpace    string
	Grayscale     bool
	Palette       string
}

// Resolve validates the request and returns the options to record, with
// defaults filled in.
func (r DitherInput) Resolve() (DitherOptions, error) {
	o := DitherOptions{
		Levels: r.Levels, Algorithm: NormalizeAlgorithm(r.Algorithm), Serpentine: r.Serpentine,
		Strength: DefaultStrength, ColorSpace: strings.ToLower(strings.TrimSpace(r.ColorSpace)),
		Grayscale: r.Grayscale, Palette: r.Palette,
	}
	if r.ChannelLevels != nil {
		cl := *r.ChannelLevels
		o.ChannelLevels = &cl
		if o.Levels == 0 {
			o.Levels = max(cl.R, cl.G, cl.B)
		}
	}
	if o.Levels == 0 {
		o.Levels = DefaultLevels
	}
	if o.Algorithm == "" {
		o.Algorithm = DefaultAlgorithm
	}
	if r.Strength != nil {
		o.Strength = *r.Strength
	}
	if o.ColorSpace == "" {
		o.ColorSpace = DefaultColorSpace
	}
	if err := o.Validate(); err != nil {
		return DitherOptions{}, err
	}
	return o, nil
}

// Validate checks resolved options against the rules: levels 2..256 (each
// channel too), a valid algorithm, strength 0..1, a known colour space and a
// well-formed palette name.
func (o DitherOptions) Validate() error {
	if err := validateLevels("levels", o.Levels); err != nil {
		return err
	}
	if cl := o.ChannelLevels; cl != nil {
		for _, c := range []struct {
			f string
			v int
		}{{"channelLevels.r", cl.R}, {"channelLevels.g", cl.G}, {"channelLevels.b", cl.B}} {
			if err := validateLevels(c.f, c.v); err != nil {
				return err
			}
		}
	}
	if ValidAlgorithm == nil || !ValidAlgorithm(o.Algorithm) {
		return newError("algorithm", CodeUnknownAlgorithm, "unknown algorithm %q", o.Algorithm)
	}
	if math.IsNaN(o.Strength) || o.Strength < 0 || o.Strength > 1 {
		return newError("strength", CodeInvalidStrength, "strength must be between 0 and 1")
	}
	if o.ColorSpace != ColorSpaceLinear && o.ColorSpace != ColorSpaceSRGB {
		return newError("colorSpace", CodeInvalidColorSpace, "colour space must be %q or %q", ColorSpaceLinear, ColorSpaceSRGB)
	}
	return validatePalette(o.Palette)
}

// CheckLevels refuses levels outside MinLevels..MaxLevels, for a levels
// value a client gave explicitly: DitherInput takes 0 for "the default",
// so an explicit 0 must be refused before it gets there.
func CheckLevels(field string, v int) error { return validateLevels(field, v) }

func validateLevels(field string, v int) error {
	if v < MinLevels || v > MaxLevels {
		return newError(field, CodeInvalidLevels, "levels must be between %d and %d, got %d", MinLevels, MaxLevels, v)
	}
	return nil
}

func validatePalette(name string) error {
	if name == "" {
		return nil
	}
	if !wellFormedName(name) {
		return newError("palette", CodeInvalidPalette, "palette names use lowercase letters, digits and '-' (at most %d)", maxPaletteName)
	}
	if ValidPalette != nil && !ValidPalette(name) {
		return newError("palette", CodeInvalidPalette, "unknown palette %q (known: %s)", name, strings.Join(Palettes(), ", "))
	}
	return nil
}

func wellFormedName(s string) bool {
	if len(s) > maxPaletteName {
		return false
	}
	for _, c := range s {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
			return false
		}
	}
	return true
}

// equal reports whether two resolved options are the same.
func (o DitherOptions) equal(p DitherOptions) bool {
	if (o.ChannelLevels == nil) != (p.ChannelLevels == nil) {
		return false
	}
	if o.ChannelLevels != nil && *o.ChannelLevels != *p.ChannelLevels {
		return false
	}
	o.ChannelLevels, p.ChannelLevels = nil, nil
	return o == p
}
