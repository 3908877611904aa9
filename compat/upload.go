package compat

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"slices"

	"github.com/google/uuid"

	"github.com/imageservice/imageservice/commands"
	"github.com/imageservice/imageservice/images"
)

// multipartSlack is what a multipart body may hold beside the file:
// boundaries, headers and other fields.
const multipartSlack = 1 << 20

// uploadTypes are the sniffed content types of the formats uploads
// accept; a file of another type (a BMP, say) does not hide a later PNG.
var uploadTypes = []string{"image/png", "image/jpeg", "image/gif", "image/webp"}

// listImages answers GET /images: every image that is not deleted.
func (a *API) listImages(w http.ResponseWriter, r *http.Request) {
	recs, err := a.records(r.Context())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	out := make([]imageJSON, len(recs))
	for i, rec := range recs {
		out[i] = rec.json()
	}
	writeJSON(w, http.StatusOK, out)
}

// getImage answers GET /images/{uuid} with the old shape without id. It
// replays the image's stream, so a client reads its own writes.
func (a *API) getImage(w http.ResponseWriter, r *http.Request) {
	s, err := a.load(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, a.fromState(s).fields())
}

// deleteImage answers DELETE /images/{uuid}: the image and its dithers
// are deleted (ImageDeleted); a second delete is 404.
func (a *API) deleteImage(w http.ResponseWriter, r *http.Request) {
	id, err := pathUUID(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	res, err := a.cfg.Commands.Delete(r.Context(), id, metadata(w, r))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.waitForProjection(r.Context(), res)
	writeJSON(w, http.StatusOK, map[string]any{"uuid": id.String(), "deleted": true})
}

// uploadImage answers POST /images: the first file field whose content is
// an image is uploaded (with the automatic first dither when the service
// has it on) and answered with 201 and the old shape.
func (a *API) uploadImage(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, a.cfg.MaxUploadBytes+multipartSlack)
	data, name, err := a.firstImage(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	res, err := a.cfg.Commands.Upload(r.Context(), commands.UploadInput{
		Body: bytes.NewReader(data), Filename: name, Metadata: metadata(w, r),
	})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.waitForProjection(r.Context(), res)
	w.Header().Set("Location", "images/"+res.Image.ID.String())
	writeJSON(w, http.StatusCreated, a.fromState(res.Image).json())
}

// firstImage reads the multipart body and returns the first file part
// whose content is sniffed as an image of an accepted format, or else the first file part (so
// that the upload's checks refuse it with their usual error). Each part
// is read up to the size cap plus one byte.
func (a *API) firstImage(r *http.Request) ([]byte, string, error) {
	mr, err := r.MultipartReader()
	if err != nil {
		return nil, "", &images.Error{Field: "file", Code: images.CodeInvalidInput,
			Message: "the body must be multipart/form-data with a file field"}
	}
	var first []byte
	var firstName string
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, "", bodyError(err)
		}
		data, name, isFile, err := a.readPart(part)
		if err != nil || !isFile {
			if err != nil {
				return nil, "", err
			}
			continue
		}
		if slices.Contains(uploadTypes, http.DetectContentType(data)) {
			return data, name, nil
		}
		if first == nil {
			first, firstName = data, name
		}
	}
	if first == nil {
		return nil, "", &images.Error{Field: "file", Code: images.CodeInvalidInput, Message: "no file was sent"}
	}
	return first, firstName, nil
}

// readPart reads a file part up to the size cap plus one byte; other
// parts are skipped.
func (a *API) readPart(part *multipart.Part) ([]byte, string, bool, error) {
	defer part.Close()
	if part.FileName() == "" {
		return nil, "", false, nil
	}
	data, err := io.ReadAll(io.LimitReader(part, a.cfg.MaxUploadBytes+1))
	if err != nil {
		return nil, "", false, bodyError(err)
	}
	return data, part.FileName(), true, nil
}

// bodyError turns an error reading the body into a user error: too large
// (413) or malformed (400).
func bodyError(err error) error {
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return &images.Error{Field: "file", Code: commands.CodeFileTooLarge,
			Message: fmt.Sprintf("the request body is larger than %d bytes", tooLarge.Limit)}
	}
	return &images.Error{Field: "file", Code: images.CodeInvalidInput, Message: "the multipart body is malformed: " + err.Error()}
}

// pathUUID parses the {uuid} of the path; a malformed one is a 400.
func pathUUID(r *http.Request) (uuid.UUID, error) {
	raw := r.PathValue("uuid")
	id, err := uuid.Parse(raw)
	if err != nil {
		return uuid.Nil, &images.Error{Field: "uuid", Code: images.CodeInvalidInput, Message: fmt.Sprintf("%q is not a valid uuid", raw)}
	}
	return id, nil
}

// load returns the state of the path's image; a deleted image, or one the
// principal may not read, is 404.
func (a *API) load(r *http.Request) (images.Image, error) {
	id, err := pathUUID(r)
	if err != nil {
		return images.Image{}, err
	}
	s, err := a.cfg.Commands.Load(r.Context(), id)
	if err != nil {
		return images.Image{}, err
	}
	if !a.visible(r.Context(), s.Owner) {
		// Others' images are answered as unknown ones, never as forbidden.
		return images.Image{}, &images.Error{Field: "uuid", Code: images.CodeNotFound, Message: fmt.Sprintf("image %s not found", id)}
	}
	if s.Deleted() {
		return images.Image{}, &images.Error{Field: "uuid", Code: images.CodeImageDeleted, Message: fmt.Sprintf("image %s was deleted", id)}
	}
	return s, nil
}
