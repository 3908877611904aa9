package compat

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/imageservice/imageservice/commands"
	"github.com/imageservice/imageservice/images"
)

// listDithers answers the dithering service's GET /images: one item per
// completed dither of every image that is not deleted, in upload order,
// then completion order.
func (a *API) listDithers(w http.ResponseWriter, r *http.Request) {
	recs, err := a.records(r.Context())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	out := []ditherJSON{}
	for _, rec := range recs {
		for _, d := range rec.completed() {
			out = append(out, rec.ditherJSON(d))
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// getDither answers GET /images/{uuid}: the image's latest completed
// dither, or 404 (NO_DITHER) while it has none.
func (a *API) getDither(w http.ResponseWriter, r *http.Request) {
	s, err := a.load(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	rec := a.fromState(s)
	d, ok := rec.latest()
	if !ok {
		writeError(w, http.StatusNotFound, CodeNoDither, fmt.Sprintf("image %s has no completed dither yet", s.ID))
		return
	}
	writeJSON(w, http.StatusOK, rec.ditherJSON(d))
}

// requestDither answers POST /images/{uuid}/{channels}, the endpoint the
// old README promised: another dither of the image with that many levels
// per channel (2..256) and the default algorithm, answered with 202 and
// the new dither, which the dither processor completes later.
func (a *API) requestDither(w http.ResponseWriter, r *http.Request) {
	id, err := pathUUID(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	channels, err := pathChannels(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	res, ditherID, err := a.cfg.Commands.RequestDither(r.Context(), commands.DitherInput{
		ImageID: id, Options: images.DitherInput{Levels: channels}, Metadata: metadata(w, r),
	})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.waitForProjection(r.Context(), res)
	if d, ok := res.Image.Dither(ditherID); ok {
		channels = d.Options.Levels
	}
	w.Header().Set("Location", "../"+id.String())
	writeJSON(w, http.StatusAccepted, ditherRequestJSON{
		ditherJSON: ditherJSON{ID: OldID(ditherID), UUID: id.String(), Channels: channels},
		DitherID:   ditherID.String(), Status: string(images.DitherStatusPending),
	})
}

// pathChannels parses the {channels} of the path: a whole number within
// the dither rules' levels (checked here too, as 0 would mean "the
// default" to them).
func pathChannels(r *http.Request) (int, error) {
	raw := r.PathValue("channels")
	n, err := strconv.Atoi(raw)
	if err != nil || n < images.MinLevels || n > images.MaxLevels {
		return 0, &images.Error{Field: "channels", Code: images.CodeInvalidLevels,
			Message: fmt.Sprintf("channels must be a whole number from %d to %d, not %q", images.MinLevels, images.MaxLevels, raw)}
	}
	return n, nil
}

// deleteDither answers the dithering service's DELETE /images/{uuid} with
// 405. The old service deleted the dithered row and told the upload
// service, which set the image to DITHER_DELETED. In the new model a
// dither is an outcome recorded in the image's event log: it cannot be
// deleted on its own (and deleting the image instead would destroy more
// than the client asked for). The answer says how to delete the image.
func deleteDither(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Allow", "GET, HEAD")
	writeError(w, http.StatusMethodNotAllowed, CodeDitherDeleteNotAllowed,
		"a dither cannot be deleted on its own: dithers are kept in the image's history; "+
			"DELETE the image on the upload service (DELETE /images/{uuid}) to delete it with its dithers")
}
