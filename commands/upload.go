package commands

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"

	"github.com/google/uuid"

	"github.com/imageservice/imageservice/eventstore"
	"github.com/imageservice/imageservice/imagefile"
	"github.com/imageservice/imageservice/images"
)

// Error codes of uploads, beside those of package images.
const (
	CodeFileTooLarge      = "FILE_TOO_LARGE"
	CodeTooManyPixels     = "TOO_MANY_PIXELS"
	CodeUnsupportedFormat = "UNSUPPORTED_FORMAT"
	CodeCorruptImage      = "CORRUPT_IMAGE"
)

// idempotencyNamespace derives image ids from idempotency keys.
var idempotencyNamespace = uuid.MustParse("0b7e3c52-6a0e-4d8e-9a35-2f4f3c1d7a61")

// Upload checks the file by its content (size cap, format, pixel cap, a
// full decode), stores its bytes and appends ImageUploaded (and the first
// DitherRequested) in one transaction. Ids are the server's. With an
// idempotency key that was used before, it returns the first upload's
// image and writes nothing.
func (s *Service) Upload(ctx context.Context, in UploadInput) (Result, error) {
	if err := s.checkNotify(in.Notify); err != nil {
		return Result{}, err
	}
	if err := images.CheckIdempotencyKey(in.IdempotencyKey); err != nil {
		return Result{}, err
	}
	data, info, err := s.readImage(ctx, in.Body)
	if err != nil {
		return Result{}, err
	}
	imageID := eventstore.NewEventID()
	if in.IdempotencyKey != "" {
		imageID = uuid.NewSHA1(idempotencyNamespace, []byte(in.Metadata.Actor+"\x00"+in.IdempotencyKey))
		if res, err := s.replayUpload(ctx, imageID); err == nil || !errors.Is(err, images.ErrNotFound) {
			return res, err
		}
	}
	sum := sha256.Sum256(data)
	cmd := images.UploadImage{
		ImageID: imageID, Filename: images.CleanFilename(in.Filename), ContentType: info.ContentType,
		ByteSize: int64(len(data)), Width: info.Width, Height: info.Height,
		SHA256: hex.EncodeToString(sum[:]), Owner: in.Metadata.Actor, Now: s.opts.Now(), Notify: in.Notify,
	}
	if in.Dither != nil || (s.opts.AutoDither && !in.NoDither) {
		cmd.Dither, cmd.DitherID = in.Dither, eventstore.NewEventID()
		if cmd.Dither == nil {
			cmd.Dither = &images.DitherInput{}
		}
	}
	evs, err := images.Upload(cmd)
	if err != nil {
		return Result{}, err
	}
	events, err := encode(evs, in.Metadata, newIDs)
	if err != nil {
		return Result{}, err
	}
	var res eventstore.AppendResult
	err = s.backend.InTx(ctx, func(tx Tx) error {
		if _, err := tx.PutBlob(ctx, info.ContentType, data); err != nil {
			return err
		}
		res, err = tx.Append(ctx, images.StreamID(imageID), eventstore.NoStream, events...)
		return err
	})
	if errors.Is(err, eventstore.ErrWrongVersion) && in.IdempotencyKey != "" {
		return s.replayUpload(ctx, imageID) // a concurrent upload with the same key won
	}
	if err != nil {
		return Result{}, fmt.Errorf("upload: %w", err)
	}
	return Result{Image: apply(images.Image{}, evs, res, cmd.Now), Position: res.Positions[len(res.Positions)-1]}, nil
}

// replayUpload returns an earlier upload's image as the result of a repeat.
func (s *Service) replayUpload(ctx context.Context, id uuid.UUID) (Result, error) {
	img, pos, err := s.load(ctx, id, 0)
	if err != nil {
		return Result{}, err
	}
	return Result{Image: img, Position: pos, Replayed: true}, nil
}

// readImage reads the body within the size cap and checks that it is an
// image of an accepted format within the pixel cap that decodes whole.
func (s *Service) readImage(ctx context.Context, body io.Reader) ([]byte, imagefile.Info, error) {
	if body == nil {
		return nil, imagefile.Info{}, &images.Error{Field: "file", Code: images.CodeInvalidInput, Message: "no file was sent"}
	}
	data, err := io.ReadAll(io.LimitReader(body, s.opts.MaxBytes+1))
	if err != nil {
		return nil, imagefile.Info{}, fmt.Errorf("read upload: %w", err)
	}
	if int64(len(data)) > s.opts.MaxBytes {
		return nil, imagefile.Info{}, &images.Error{Field: "file", Code: CodeFileTooLarge,
			Message: fmt.Sprintf("the file is larger than the %d MiB limit", s.opts.MaxBytes>>20)}
	}
	if len(data) == 0 {
		return nil, imagefile.Info{}, &images.Error{Field: "file", Code: images.CodeInvalidInput, Message: "the file is empty"}
	}
	release, err := s.decodeTurn(ctx, data)
	if err != nil {
		return nil, imagefile.Info{}, err
	}
	info, err := func() (imagefile.Info, error) {
		defer release() // even if decoding panics: the budget must not shrink for good
		_, info, err := imagefile.Decode(bytes.NewReader(data), imagefile.Limits{MaxBytes: s.opts.MaxBytes, MaxPixels: s.opts.MaxPixels})
		return info, err
	}()
	if err != nil {
		return nil, imagefile.Info{}, uploadError(err, s.opts.MaxPixels)
	}
	return data, info, nil
}

// decodeTurn waits until the image in data may be decoded within
// Options.DecodeBudget, and returns what gives its pixels back. It
// reserves what decoding holds at its peak (imagefile.PeakPixels, from the
// header and the EXIF orientation): the pixels, twice them when turning
// the image upright copies it. A header that cannot be read weighs a pixel
// (Decode will refuse it), and an image larger than the budget takes all
// of it.
func (s *Service) decodeTurn(ctx context.Context, data []byte) (release func(), err error) {
	pixels := int64(1)
	if n, err := imagefile.PeakPixels(data); err == nil {
		pixels = min(max(n, 1), s.opts.DecodeBudget)
	}
	if err := s.decoding.Acquire(ctx, pixels); err != nil {
		return nil, fmt.Errorf("wait to decode the upload: %w", err)
	}
	return func() { s.decoding.Release(pixels) }, nil
}

// uploadError turns imagefile's errors into user errors.
func uploadError(err error, maxPixels int64) error {
	e := &images.Error{Field: "file"}
	switch {
	case errors.Is(err, imagefile.ErrTooLarge):
		e.Code, e.Message = CodeFileTooLarge, "the file is too large"
	case errors.Is(err, imagefile.ErrTooManyPixels):
		e.Code, e.Message = CodeTooManyPixels, fmt.Sprintf("the image has more than %d pixels", maxPixels)
	case errors.Is(err, imagefile.ErrUnsupportedFormat):
		e.Code, e.Message = CodeUnsupportedFormat, "the file is not a PNG, JPEG, GIF or WebP image"
	case errors.Is(err, imagefile.ErrCorrupt):
		e.Code, e.Message = CodeCorruptImage, "the image is truncated or corrupt and cannot be decoded"
	default:
		return fmt.Errorf("check upload: %w", err)
	}
	return e
}
