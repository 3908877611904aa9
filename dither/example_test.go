package dither_test

import (
	"fmt"
	"image"
	"image/color"

	"github.com/imageservice/imageservice/dither"
)

func ExampleDither() {
	src := image.NewGray(image.Rect(0, 0, 4, 2))
	for i := range src.Pix {
		src.Pix[i] = 128
	}
	out, err := dither.Dither(src, dither.Options{Algorithm: dither.FloydSteinberg, ColorSpace: dither.SRGB})
	if err != nil {
		panic(err)
	}
	p := out.(*image.Paletted)
	fmt.Println(len(p.Palette), "colours")
	fmt.Println(p.Pix)
	// Output:
	// 8 colours
	// [7 0 7 0 0 7 0 7]
}

func ExampleParseAlgorithm() {
	for _, s := range []string{"floyd-steinberg", "BAYER_8X8", "Sierra_Lite"} {
		a, err := dither.ParseAlgorithm(s)
		fmt.Println(a, err)
	}
	_, err := dither.ParseAlgorithm("dots")
	fmt.Println(err != nil)
	// Output:
	// floyd-steinberg <nil>
	// bayer-8x8 <nil>
	// sierra-lite <nil>
	// true
}

func ExampleOptions_Validate() {
	err := dither.Options{Levels: 1}.Validate()
	fmt.Println(err)
	// Output:
	// invalid dither options: levels must be between 2 and 256, got 1
}

func ExampleNamedPalette() {
	p, ok := dither.NamedPalette("gameboy")
	fmt.Println(ok, len(p), color.NRGBAModel.Convert(p[0]))
	// Output:
	// true 4 {15 56 15 255}
}
