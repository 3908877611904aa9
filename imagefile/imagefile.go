// Package imagefile reads uploaded image files safely and writes results.
//
// Decode checks an input before decoding it: a byte cap, the format
// (PNG, JPEG, GIF first frame or WebP, told by content, not by name), and
// the pixel count from the header. It applies the EXIF orientation of
// JPEG (Exif APP1), PNG (eXIf chunk before the image data) and WebP (EXIF
// chunk of the extended format).
// Its errors wrap sentinels that a caller maps to user messages.
package imagefile

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/draw"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"

	"golang.org/x/image/webp"
)

// Default limits, used where a Limits field is zero.
const (
	// DefaultMaxBytes is the default byte cap: 32 MiB.
	DefaultMaxBytes = 32 << 20
	// DefaultMaxPixels is the default pixel cap: 50 megapixels.
	DefaultMaxPixels = 50_000_000
)

// Limits bound what Decode accepts. Zero fields take the defaults.
type Limits struct {
	// MaxBytes is the largest input accepted, in bytes.
	MaxBytes int64
	// MaxPixels is the largest width*height accepted.
	MaxPixels int64
}

func (l Limits) withDefaults() Limits {
	if l.MaxBytes <= 0 {
		l.MaxBytes = DefaultMaxBytes
	}
	if l.MaxPixels <= 0 {
		l.MaxPixels = DefaultMaxPixels
	}
	return l
}

// Sentinel errors wrapped by Decode's errors; test them with errors.Is.
var (
	// ErrTooLarge means the input has more bytes than Limits.MaxBytes.
	ErrTooLarge = errors.New("image file too large")
	// ErrTooManyPixels means the image has more pixels than Limits.MaxPixels.
	ErrTooManyPixels = errors.New("image has too many pixels")
	// ErrUnsupportedFormat means the content is not PNG, JPEG, GIF or WebP.
	ErrUnsupportedFormat = errors.New("unsupported image format (PNG, JPEG, GIF or WebP expected)")
	// ErrCorrupt means the content is truncated or cannot be decoded.
	ErrCorrupt = errors.New("image file corrupt or truncated")
)

// Info describes a decoded image.
type Info struct {
	// Format is "png", "jpeg", "gif" or "webp".
	Format string
	// Width and Height are the size after EXIF orientation is applied.
	Width, Height int
	// ContentType is the MIME type, such as "image/png".
	ContentType string
	// Orientation is the EXIF orientation found (1..8; 1 when none).
	Orientation int
}

// format is one accepted image format.
type format struct {
	name, contentType string
	magic             func([]byte) bool
	config            func(io.Reader) (image.Config, error)
	decode            func(io.Reader) (image.Image, error)
	// orientation reads the EXIF orientation (1..8, 1 when none) of a
	// file that decoded; nil for a format without EXIF.
	orientation func([]byte) int
}

var formats = []format{
	{"png", "image/png", prefix("\x89PNG\r\n\x1a\n"), png.DecodeConfig, png.Decode, pngOrientation},
	{"jpeg", "image/jpeg", prefix("\xff\xd8\xff"), jpeg.DecodeConfig, jpeg.Decode, jpegOrientation},
	{"gif", "image/gif", func(b []byte) bool { return prefix("GIF87a")(b) || prefix("GIF89a")(b) }, gif.DecodeConfig, gif.Decode, nil},
	{"webp", "image/webp", func(b []byte) bool { return len(b) >= 12 && string(b[:4]) == "RIFF" && string(b[8:12]) == "WEBP" }, webp.DecodeConfig, webp.Decode, webpOrientation},
}

// onScreen places a GIF's first frame on the GIF's logical screen, as
// browsers show it: transparent where the frame does not reach. A frame
// that covers the screen is returned as it is.
func onScreen(frame image.Image, cfg image.Config) image.Image {
	screen := image.Rect(0, 0, cfg.Width, cfg.Height)
	if frame.Bounds() == screen {
		return frame
	}
	canvas := image.NewNRGBA(screen)
	draw.Draw(canvas, frame.Bounds(), frame, frame.Bounds().Min, draw.Src)
	return canvas
}

func prefix(p string) func([]byte) bool {
	return func(b []byte) bool { return bytes.HasPrefix(b, []byte(p)) }
}

// sniff returns the format of data, told by its first bytes.
func sniff(data []byte) (format, error) {
	for _, f := range formats {
		if f.magic(data) {
			return f, nil
		}
	}
	return format{}, ErrUnsupportedFormat
}

// PeakPixels returns how many pixels decoding the image in data, of an
// accepted format, holds at its peak, from its header and EXIF orientation
// alone: its width times its height, twice that when turning it upright
// copies the decoded pixels (OrientCopies: a quarter turn or a
// transposition, or any turn of a JPEG or lossy WebP, which become RGBA).
// A caller that bounds the pixels decoded at once reserves this many.
func PeakPixels(data []byte) (int64, error) {
	f, cfg, err := header(data)
	if err != nil {
		return 0, err
	}
	n := int64(cfg.Width) * int64(cfg.Height)
	if f.orientation != nil && OrientCopies(f.orientation(data), cfg.ColorModel) {
		n *= 2
	}
	return n, nil
}

// header identifies the format of data by content and reads its header.
func header(data []byte) (format, image.Config, error) {
	f, err := sniff(data)
	if err != nil {
		return format{}, image.Config{}, err
	}
	cfg, err := f.config(bytes.NewReader(data))
	if err != nil {
		return format{}, image.Config{}, fmt.Errorf("%w: %s header: %v", ErrCorrupt, f.name, err)
	}
	return f, cfg, nil
}

// Decode reads one image from r within limits. It reads at most
// MaxBytes+1 bytes, identifies the format by content, reads the header to
// check the pixel count before decoding, decodes (the first frame of a
// GIF), and turns a JPEG, PNG or WebP upright by its EXIF orientation
// (Orient; PeakPixels tells what that holds at its peak). Info's width and
// height are those of the upright image.
func Decode(r io.Reader, limits Limits) (image.Image, Info, error) {
	limits = limits.withDefaults()
	data, err := io.ReadAll(io.LimitReader(r, limits.MaxBytes+1))
	if err != nil {
		return nil, Info{}, fmt.Errorf("read image: %w", err)
	}
	if int64(len(data)) > limits.MaxBytes {
		return nil, Info{}, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, limits.MaxBytes)
	}
	f, cfg, err := header(data)
	if err != nil {
		return nil, Info{}, err
	}
	if err := checkPixels(cfg, limits.MaxPixels); err != nil {
		return nil, Info{}, err
	}
	img, err := f.decode(bytes.NewReader(data))
	if err != nil {
		return nil, Info{}, fmt.Errorf("%w: %s: %v", ErrCorrupt, f.name, err)
	}
	info := Info{Format: f.name, ContentType: f.contentType, Orientation: 1}
	if f.name == "gif" {
		img = onScreen(img, cfg)
	}
	if f.orientation != nil {
		info.Orientation = f.orientation(data)
		img = Orient(img, info.Orientation)
	}
	info.Width, info.Height = img.Bounds().Dx(), img.Bounds().Dy()
	return img, info, nil
}

// checkPixels refuses empty images and images over limit pixels.
func checkPixels(cfg image.Config, limit int64) error {
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return fmt.Errorf("%w: empty image %dx%d", ErrCorrupt, cfg.Width, cfg.Height)
	}
	if n := int64(cfg.Width) * int64(cfg.Height); n > limit {
		return fmt.Errorf("%w: %dx%d is %d pixels, at most %d allowed", ErrTooManyPixels, cfg.Width, cfg.Height, n, limit)
	}
	return nil
}

// EncodePNG writes img as PNG at the fastest compression level; an
// *image.Paletted is written as a paletted PNG.
func EncodePNG(w io.Writer, img image.Image) error {
	enc := png.Encoder{CompressionLevel: png.BestSpeed, BufferPool: bufferPool}
	if err := enc.Encode(w, img); err != nil {
		return fmt.Errorf("encode png: %w", err)
	}
	return nil
}
