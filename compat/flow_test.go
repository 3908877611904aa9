package compat_test

import (
	"net/http"
	"slices"
	"strconv"
	"testing"

	"github.com/imageservice/imageservice/server"
)

// The old clients' types, with exactly the old services' fields; the
// tests decode with unknown fields disallowed.
type (
	oldImage struct {
		ID        int    `json:"id"`
		UUID      string `json:"uuid"`
		Filename  string `json:"filename"`
		Status    string `json:"status"`
		URL       string `json:"url"`
		URLDither string `json:"url_dither"`
	}
	oldImageOne struct { // GET /images/<uuid> had no id
		UUID      string `json:"uuid"`
		Filename  string `json:"filename"`
		Status    string `json:"status"`
		URL       string `json:"url"`
		URLDither string `json:"url_dither"`
	}
	oldDither struct {
		ID        int    `json:"id"`
		UUID      string `json:"uuid"`
		Channels  int    `json:"channels"`
		URLDither string `json:"url_dither"`
	}
	ditherAccepted struct {
		ID        int    `json:"id"`
		UUID      string `json:"uuid"`
		Channels  int    `json:"channels"`
		URLDither string `json:"url_dither"`
		DitherID  string `json:"dither_id"`
		Status    string `json:"status"`
	}
)

// The old flows, over the mounts of the main server and over the old
// services' own listeners: upload, list, get, the automatic dither
// completes, dither again with 4 channels, delete.
func TestOldFlows(t *testing.T) {
	e := start(t, server.Config{AutoDither: true})
	t.Run("mounted", func(t *testing.T) { oldFlow(t, e.main+"/compat/upload", e.main+"/compat/dither") })
	t.Run("own listeners", func(t *testing.T) { oldFlow(t, e.upload, e.dither) })
}

func oldFlow(t *testing.T, upload, dither string) {
	img := uploadPNG(t, upload)
	one := waitFinished(t, upload, img)
	fetchPNG(t, one.URLDither, 64, 48)
	var d oldDither
	if code, raw := call(t, "GET", dither+"/images/"+img.UUID, nil, "", &d); code != 200 || d.UUID != img.UUID || d.Channels != 2 || d.URLDither != one.URLDither || d.ID <= 0 {
		t.Fatalf("dither GET = %d %s, want the 2-channel dither %s", code, raw, one.URLDither)
	}
	again := ditherAgain(t, dither, img.UUID, 4)
	eventually(t, "the upload service to show the 4-channel dither", func() bool {
		var now oldImageOne
		call(t, "GET", upload+"/images/"+img.UUID, nil, "", &now)
		return now.Status == "FINISHED" && now.URLDither == again.URLDither
	})
	deleteImage(t, upload, dither, img.UUID)
}

// uploadPNG uploads a PNG the old way and checks the 201 answer and the list.
func uploadPNG(t *testing.T, upload string) oldImage {
	t.Helper()
	body, ct := multipartBody(file{"file", "photo.png", pngBytes(64, 48)})
	var img oldImage
	if code, raw := call(t, "POST", upload+"/images", body, ct, &img); code != http.StatusCreated {
		t.Fatalf("upload = %d %s", code, raw)
	}
	if img.ID <= 0 || img.UUID == "" || img.Filename != "photo.png" || img.Status != "PENDING" || img.URLDither != "" || img.URL == "" {
		t.Fatalf("upload answered %+v", img)
	}
	var list []oldImage
	if code, raw := call(t, "GET", upload+"/images", nil, "", &list); code != 200 || !slices.ContainsFunc(list, func(i oldImage) bool {
		return i.UUID == img.UUID && i.ID == img.ID && i.Filename == img.Filename && i.URL == img.URL
	}) {
		t.Fatalf("list = %d %s, want %+v in it", code, raw, img)
	}
	return img
}

// waitFinished polls GET /images/<uuid> until the automatic dither is done.
func waitFinished(t *testing.T, upload string, img oldImage) oldImageOne {
	t.Helper()
	var one oldImageOne
	eventually(t, "status FINISHED", func() bool {
		if code, raw := call(t, "GET", upload+"/images/"+img.UUID, nil, "", &one); code != 200 || one.UUID != img.UUID {
			t.Fatalf("get = %d %s", code, raw)
		}
		return one.Status == "FINISHED"
	})
	if one.URLDither == "" || one.URL != img.URL || one.Filename != img.Filename {
		t.Fatalf("finished image = %+v", one)
	}
	return one
}

// ditherAgain asks for another dither and waits for it in the dithering
// service's list, returning it.
func ditherAgain(t *testing.T, dither, id string, channels int) oldDither {
	t.Helper()
	var acc ditherAccepted
	code, raw := call(t, "POST", dither+"/images/"+id+"/"+strconv.Itoa(channels), nil, "", &acc)
	if code != http.StatusAccepted || acc.UUID != id || acc.Channels != channels || acc.Status != "PENDING" || acc.DitherID == "" || acc.ID <= 0 {
		t.Fatalf("dither request = %d %s", code, raw)
	}
	var found oldDither
	eventually(t, "the new dither in the dithering service's list", func() bool {
		var list []oldDither
		call(t, "GET", dither+"/images", nil, "", &list)
		i := slices.IndexFunc(list, func(d oldDither) bool { return d.ID == acc.ID })
		if i >= 0 {
			found = list[i]
		}
		return i >= 0
	})
	if found.UUID != id || found.Channels != channels || found.URLDither == "" {
		t.Fatalf("listed dither = %+v", found)
	}
	fetchPNG(t, found.URLDither, 64, 48)
	return found
}

// deleteImage deletes an image and checks that both services forget it.
func deleteImage(t *testing.T, upload, dither, id string) {
	t.Helper()
	if code, raw := call(t, "DELETE", upload+"/images/"+id, nil, "", nil); code != 200 {
		t.Fatalf("delete = %d %s", code, raw)
	}
	wantError(t, "GET", upload+"/images/"+id, nil, "", 404, "IMAGE_DELETED")
	wantError(t, "GET", dither+"/images/"+id, nil, "", 404, "IMAGE_DELETED")
	wantError(t, "DELETE", upload+"/images/"+id, nil, "", 404, "NOT_FOUND")
	var images []oldImage
	call(t, "GET", upload+"/images", nil, "", &images)
	var dithers []oldDither
	call(t, "GET", dither+"/images", nil, "", &dithers)
	if slices.ContainsFunc(images, func(i oldImage) bool { return i.UUID == id }) ||
		slices.ContainsFunc(dithers, func(d oldDither) bool { return d.UUID == id }) {
		t.Fatalf("the deleted image is still listed: %+v %+v", images, dithers)
	}
}
