package dither

import (
	"image/color"
	"slices"
	"strings"
)

// namedPalettes holds the fixed palettes by name.
var namedPalettes = map[string]func() color.Palette{
	"black-white": func() color.Palette {
		return color.Palette{color.NRGBA{0, 0, 0, 255}, color.NRGBA{255, 255, 255, 255}}
	},
	"cga":      cgaPalette,
	"gameboy":  gameboyPalette,
	"web-safe": webSafePalette,
}

// PaletteNames returns the names of the fixed palettes, sorted.
func PaletteNames() []string {
	names := make([]string, 0, len(namedPalettes))
	for n := range namedPalettes {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// NamedPalette returns a fresh copy of the named fixed palette
// ("black-white", "cga", "gameboy", "web-safe"; case-insensitive, "_" and
// "-" alike) and whether the name is known.
func NamedPalette(name string) (color.Palette, bool) {
	f, ok := namedPalettes[strings.ToLower(strings.ReplaceAll(name, "_", "-"))]
	if !ok {
		return nil, false
	}
	return f(), true
}

// cgaPalette is the 16-colour IBM CGA palette.
func cgaPalette() color.Palette {
	hex := []uint32{
		0x000000, 0x0000AA, 0x00AA00, 0x00AAAA, 0xAA0000, 0xAA00AA, 0xAA5500, 0xAAAAAA,
		0x555555, 0x5555FF, 0x55FF55, 0x55FFFF, 0xFF5555, 0xFF55FF, 0xFFFF55, 0xFFFFFF,
	}
	return hexPalette(hex)
}

// gameboyPalette is the four greens of the original Game Boy screen.
func gameboyPalette() color.Palette {
	return hexPalette([]uint32{0x0F380F, 0x306230, 0x8BAC0F, 0x9BBC0F})
}

// webSafePalette is the 216-colour web-safe palette (6 levels per channel).
func webSafePalette() color.Palette {
	p := make(color.Palette, 0, 216)
	for r := 0; r < 6; r++ {
		for g := 0; g < 6; g++ {
			for b := 0; b < 6; b++ {
				p = append(p, color.NRGBA{uint8(r * 51), uint8(g * 51), uint8(b * 51), 255})
			}
		}
	}
	return p
}

func hexPalette(hex []uint32) color.Palette {
	p := make(color.Palette, len(hex))
	for i, h := range hex {
		p[i] = color.NRGBA{uint8(h >> 16), uint8(h >> 8), uint8(h), 255}
	}
	return p
}
