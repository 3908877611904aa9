package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"image"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/imageservice/imageservice/dither"
	"github.com/imageservice/imageservice/imagefile"
)

// ditherFlags are the parsed flags and arguments of "imageservice dither".
type ditherFlags struct {
	opts    dither.Options
	limits  imagefile.Limits
	in, out string
}

const ditherUsage = `Usage: imageservice dither [flags] IN OUT

Dithers the image file IN (PNG, JPEG, GIF or WebP) and writes OUT as PNG.
Use - for standard input or standard output. Flags may come before or after
IN and OUT.

Flags:
`

// runDither is the "dither" command: it dithers a file offline with the
// same engine as the service.
func runDither(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f, err := parseDitherFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	img, err := readImage(f.in, f.limits)
	if err != nil {
		return err
	}
	out, err := dither.Dither(img, f.opts)
	if err != nil {
		return fmt.Errorf("dither %s: %w", f.in, err)
	}
	return writePNG(f.out, stdout, func(w io.Writer) error { return imagefile.EncodePNG(w, out) })
}

// parseDitherFlags parses args, allowing flags before and after IN OUT.
func parseDitherFlags(args []string, stderr io.Writer) (ditherFlags, error) {
	var f ditherFlags
	fs := flag.NewFlagSet("dither", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, ditherUsage)
		fs.PrintDefaults()
	}
	levels := fs.Int("levels", dither.DefaultLevels, "levels per colour channel, 2..256 (2 gives 8 colours)")
	alg := fs.String("algorithm", dither.FloydSteinberg.String(), "algorithm: "+strings.Join(dither.AlgorithmNames(), ", "))
	fs.BoolVar(&f.opts.Serpentine, "serpentine", false, "scan odd rows right to left (error diffusion)")
	space := fs.String("colorspace", "linear", "colour space of the error: linear or srgb")
	fs.StringVar(&f.opts.Palette, "palette", "", "fixed palette instead of levels: "+strings.Join(dither.PaletteNames(), ", "))
	fs.BoolVar(&f.opts.Grayscale, "grayscale", false, "convert to grey first")
	fs.Float64Var(&f.opts.Strength, "strength", 1, "strength of the dithering, 0..1")
	fs.Int64Var(&f.opts.Seed, "seed", 0, "seed of the random algorithm")
	fs.IntVar(&f.opts.Workers, "workers", min(runtime.GOMAXPROCS(0), dither.MaxWorkers), "goroutines for one image (two-level Floyd-Steinberg only; same result)")
	fs.Int64Var(&f.limits.MaxPixels, "max-pixels", imagefile.DefaultMaxPixels, "largest image accepted, in pixels")
	fs.Int64Var(&f.limits.MaxBytes, "max-bytes", imagefile.DefaultMaxBytes, "largest input file accepted, in bytes")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return f, err
	}
	if len(pos) != 2 {
		fmt.Fprintf(stderr, "dither needs IN and OUT, got %d argument(s)\n", len(pos))
		fs.Usage()
		return f, usageError{fmt.Errorf("dither needs IN and OUT, got %d argument(s)", len(pos))}
	}
	f.in, f.out = pos[0], pos[1]
	if *levels == 0 {
		// The engine reads 0 as "the default": a 0 given here is a mistake.
		return f, fmt.Errorf("--levels must be between %d and %d, got 0", dither.MinLevels, dither.MaxLevels)
	}
	f.opts.Levels = *levels
	if f.opts.Algorithm, err = dither.ParseAlgorithm(*alg); err != nil {
		return f, err
	}
	if f.opts.ColorSpace, err = dither.ParseColorSpace(*space); err != nil {
		return f, err
	}
	if f.opts.Strength == 0 {
		f.opts.Algorithm = dither.None // no dithering at all
	}
	return f, f.opts.Validate()
}

// parseInterspersed parses flags anywhere in args and returns the other
// arguments in order. "--" ends the flags; a lone "-" is an argument.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := parseFlags(fs, args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			return append(pos, rest...), nil
		}
		pos, args = append(pos, rest[0]), rest[1:]
	}
}

// readImage decodes the named file, or standard input for "-".
func readImage(name string, limits imagefile.Limits) (image.Image, error) {
	var r io.Reader = os.Stdin
	if name != "-" {
		file, err := os.Open(name)
		if err != nil {
			return nil, fmt.Errorf("open input: %w", err)
		}
		defer file.Close()
		r = file
	} else {
		name = "standard input"
	}
	img, _, err := imagefile.Decode(r, limits)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	return img, nil
}

// writePNG runs encode into the named file, or stdout for "-". A file is
// written to a temporary name beside it and renamed, so that a failure
// leaves no partial output.
func writePNG(name string, stdout io.Writer, encode func(io.Writer) error) error {
	if name == "-" {
		bw := bufio.NewWriter(stdout)
		if err := encode(bw); err != nil {
			return err
		}
		if err := bw.Flush(); err != nil {
			return fmt.Errorf("write standard output: %w", err)
		}
		return nil
	}
	tmp, err := createTemp(filepath.Dir(name))
	if err != nil {
		return fmt.Errorf("create output: %w", err)
	}
	defer os.Remove(tmp.Name()) // a no-op after the rename
	bw := bufio.NewWriter(tmp)
	if err := encode(bw); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := errors.Join(bw.Flush(), keepMode(tmp, name), tmp.Close()); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := os.Rename(tmp.Name(), name); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}

// createTemp creates a new file in dir for the output, with the mode a
// file created in place would have (0666 under the umask), which
// os.CreateTemp would make private.
func createTemp(dir string) (*os.File, error) {
	for {
		f, err := os.OpenFile(filepath.Join(dir, ".dither-"+rand.Text()+".png"), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o666)
		if !errors.Is(err, fs.ErrExist) {
			return f, err
		}
	}
}

// keepMode gives tmp the permissions of the file it will replace, if any.
func keepMode(tmp *os.File, name string) error {
	fi, err := os.Stat(name)
	if err != nil || !fi.Mode().IsRegular() {
		return nil // nothing to replace
	}
	return tmp.Chmod(fi.Mode().Perm())
}
