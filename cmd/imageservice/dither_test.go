package main

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// gradientPNG writes a small colour gradient PNG and returns its path.
func gradientPNG(t *testing.T, dir string, w, h int) string {
	t.Helper()
	m := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			m.SetNRGBA(x, y, color.NRGBA{uint8(x * 255 / w), uint8(y * 255 / h), 128, 255})
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, m); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "in.png")
	if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// runCLI runs the binary's entry point and returns the exit code and outputs.
func runCLI(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func decodePaletted(t *testing.T, data []byte) *image.Paletted {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("output is not a PNG: %v", err)
	}
	p, ok := img.(*image.Paletted)
	if !ok {
		t.Fatalf("output is %T, want a paletted PNG", img)
	}
	return p
}

func TestDitherFiles(t *testing.T) {
	dir := t.TempDir()
	in := gradientPNG(t, dir, 40, 30)
	out := filepath.Join(dir, "out.png")
	code, _, stderr := runCLI("dither", "--levels", "3", "--algorithm", "BAYER_4X4", "--serpentine", in, out)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	p := decodePaletted(t, data)
	if p.Bounds().Dx() != 40 || p.Bounds().Dy() != 30 || len(p.Palette) > 27 {
		t.Errorf("output %v with %d colours", p.Bounds(), len(p.Palette))
	}
}

// TestDither16BitPNG checks that the command dithers a 16-bit PNG at 16
// bits: posterising a 16-bit ramp across the middle of linear light (the
// default colour space) to two levels puts the edge at the 16-bit middle,
// to within one step, and not at the 8-bit value 0xbc00, 64 steps below.
func TestDither16BitPNG(t *testing.T) {
	const from, w = 0xbb00, 768
	m := image.NewGray16(image.Rect(0, 0, w, 2))
	for x := range w {
		for y := range 2 {
			m.SetGray16(x, y, color.Gray16{uint16(from + x)})
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, m); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in16.png"), filepath.Join(dir, "out.png")
	if err := os.WriteFile(in, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := runCLI("dither", "--levels", "2", "--algorithm", "none", in, out); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	p := decodePaletted(t, data)
	mid := from
	for math.Pow((float64(mid)/65535+0.055)/1.055, 2.4) <= 0.5 {
		mid++
	}
	for x := range w {
		v := from + x
		r, _, _, _ := p.At(x, 1).RGBA()
		if (v < mid-1 && r != 0) || (v > mid && r != 0xffff) {
			t.Fatalf("value 0x%04x gave red 0x%04x; the middle is at 0x%04x", v, r, mid)
		}
	}
}

// The output gets the mode a file created in place would (as os.Create
// under the umask), or keeps the mode of the file it replaces.
func TestDitherOutputMode(t *testing.T) {
	dir := t.TempDir()
	in := gradientPNG(t, dir, 8, 8)
	ref, err := os.Create(filepath.Join(dir, "ref"))
	if err != nil {
		t.Fatal(err)
	}
	ref.Close()
	want := modeOf(t, ref.Name())
	out := filepath.Join(dir, "out.png")
	if code, _, stderr := runCLI("dither", in, out); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if got := modeOf(t, out); got != want {
		t.Errorf("new output has mode %v, want %v as os.Create gives", got, want)
	}
	if err := os.Chmod(out, 0o640); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := runCLI("dither", in, out); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if got := modeOf(t, out); got != 0o640 {
		t.Errorf("replaced output has mode %v, want the old file's %v", got, os.FileMode(0o640))
	}
}

func modeOf(t *testing.T, name string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(name)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func TestDitherFlagsAfterArguments(t *testing.T) {
	dir := t.TempDir()
	in := gradientPNG(t, dir, 8, 8)
	out := filepath.Join(dir, "out.png")
	code, _, stderr := runCLI("dither", in, out, "--palette", "gameboy", "--colorspace", "srgb", "--strength", "0.5")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	data, _ := os.ReadFile(out)
	if p := decodePaletted(t, data); len(p.Palette) != 4 {
		t.Errorf("gameboy output has %d colours", len(p.Palette))
	}
}

func TestDitherStdinStdout(t *testing.T) {
	dir := t.TempDir()
	in, err := os.Open(gradientPNG(t, dir, 16, 9))
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	old := os.Stdin
	os.Stdin = in
	defer func() { os.Stdin = old }()
	code, stdout, stderr := runCLI("dither", "--grayscale", "-", "-")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	p := decodePaletted(t, []byte(stdout))
	if len(p.Palette) != 2 || p.Bounds().Dx() != 16 {
		t.Errorf("grayscale output: %d colours, %v", len(p.Palette), p.Bounds())
	}
}

func TestDitherErrors(t *testing.T) {
	dir := t.TempDir()
	in := gradientPNG(t, dir, 20, 20)
	out := filepath.Join(dir, "out.png")
	notImage := filepath.Join(dir, "notes.png")
	os.WriteFile(notImage, []byte("just text"), 0o644)
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"dither", "--algorithm", "wobble", in, out}, "floyd-steinberg, jarvis-judice-ninke"},
		{[]string{"dither", "--palette", "c64", in, out}, "black-white, cga, gameboy, web-safe"},
		{[]string{"dither", "--levels", "1", in, out}, "levels must be between 2 and 256"},
		{[]string{"dither", "--levels", "257", in, out}, "levels must be between 2 and 256"},
		{[]string{"dither", "--strength", "2", in, out}, "strength must be between 0 and 1"},
		{[]string{"dither", "--colorspace", "cmyk", in, out}, "linear, srgb"},
		{[]string{"dither", "--max-pixels", "100", in, out}, "too many pixels"},
		{[]string{"dither", "--max-bytes", "10", in, out}, "too large"},
		{[]string{"dither", notImage, out}, "unsupported image format"},
		{[]string{"dither", filepath.Join(dir, "missing.png"), out}, "open input"},
		{[]string{"dither", in}, "needs IN and OUT"},
		{[]string{"dither", "--nope", in, out}, "flag provided but not defined"},
	}
	for _, c := range cases {
		code, _, stderr := runCLI(c.args...)
		if code == 0 || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want an error containing %q", c.args, code, stderr, c.want)
		}
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("a failed run left %s behind", out)
	}
	if code, _, _ := runCLI("dither", "-h"); code != 0 {
		t.Errorf("-h exit %d", code)
	}
}
