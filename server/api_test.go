package server_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/imageservice/imageservice/blobstore"
	"github.com/imageservice/imageservice/server"
)

func TestUploadFormats(t *testing.T) {
	e := start(t, server.Config{AutoDither: true})
	files := []struct {
		name, contentType string
		data              []byte
	}{
		{"photo.png", "image/png", pngBytes(40, 30)},
		{"photo.jpg", "image/jpeg", jpegBytes(40, 30)},
		{"anim.gif", "image/gif", gifBytes(40, 30)},
		// The name lies: the content decides.
		{"really-a-png.jpg", "image/png", pngBytes(8, 4)},
	}
	for _, f := range files {
		img := e.mustUpload(f.name, f.data)
		sum := sha256.Sum256(f.data)
		if img.ContentType != f.contentType || img.Sha256 != hex.EncodeToString(sum[:]) ||
			img.ByteSize != len(f.data) || img.Status != "ACTIVE" || img.Filename != f.name || img.Version != 2 {
			t.Errorf("%s: %+v", f.name, img)
		}
		if len(img.Dithers.Edges) != 1 {
			t.Fatalf("%s: %d dithers, want the automatic one", f.name, len(img.Dithers.Edges))
		}
		d := img.Dithers.Edges[0].Node
		if d.Status != "PENDING" || d.Levels != 2 || d.Algorithm != "FLOYD_STEINBERG" || d.ColorSpace != "LINEAR" {
			t.Errorf("%s: automatic dither %+v", f.name, d)
		}
		code, ct, body := get(t, img.URL)
		if code != 200 || ct != f.contentType || !bytes.Equal(body, f.data) {
			t.Errorf("%s: GET %s = %d %s (%d bytes)", f.name, img.URL, code, ct, len(body))
		}
	}
	w, h := 40, 30
	img := e.mustUpload("size.png", pngBytes(w, h))
	if img.Width != w || img.Height != h {
		t.Errorf("dimensions %dx%d, want %dx%d", img.Width, img.Height, w, h)
	}
}

func TestUploadOptions(t *testing.T) {
	e := start(t, server.Config{AutoDither: true})
	var res uploadResult
	e.upload("a.png", pngBytes(10, 10), map[string]any{
		"filename": "../../etc/passwd\x00.png",
		"dither":   map[string]any{"levels": 4, "algorithm": "BAYER_8X8", "serpentine": true, "colorSpace": "SRGB"},
	}, &res)
	img, d := res.UploadImage.Image, res.UploadImage.Dither
	if img == nil || d == nil || len(res.UploadImage.UserErrors) > 0 {
		t.Fatalf("upload: %+v", res.UploadImage)
	}
	if img.Filename != "passwd.png" && img.Filename != "passwd_.png" {
		t.Errorf("filename not cleaned: %q", img.Filename)
	}
	if d.Levels != 4 || d.Algorithm != "BAYER_8X8" {
		t.Errorf("dither %+v", d)
	}
	res = uploadResult{}
	e.upload("b.png", pngBytes(10, 10), map[string]any{"autoDither": false}, &res)
	if res.UploadImage.Dither != nil || len(res.UploadImage.Image.Dithers.Edges) != 0 {
		t.Errorf("autoDither false still requested a dither: %+v", res.UploadImage)
	}
}

func TestQueriesAndPagination(t *testing.T) {
	e := start(t, server.Config{AutoDither: true})
	var ids []string
	for i := range 5 {
		ids = append(ids, e.mustUpload(fmt.Sprintf("img-%d.png", i), pngBytes(4+i, 4)).ID)
	}
	type page struct {
		Images struct {
			Edges []struct {
				Cursor string
				Node   struct{ ID string }
			}
			PageInfo struct {
				HasNextPage bool
				EndCursor   string
			}
		}
	}
	var seen []string
	after := any(nil)
	eventually(t, "the read model to hold five images", func() bool {
		var p page
		e.mustDo(`{ images(first: 100) { edges { node { id } } } }`, nil, &p)
		return len(p.Images.Edges) == 5
	})
	for {
		var p page
		e.mustDo(`query ($after: String) { images(first: 2, after: $after) {
			edges { cursor node { id } } pageInfo { hasNextPage endCursor } } }`, map[string]any{"after": after}, &p)
		for _, edge := range p.Images.Edges {
			seen = append(seen, edge.Node.ID)
		}
		if !p.Images.PageInfo.HasNextPage {
			break
		}
		after = p.Images.PageInfo.EndCursor
	}
	want := []string{ids[4], ids[3], ids[2], ids[1], ids[0]} // newest first
	if fmt.Sprint(seen) != fmt.Sprint(want) {
		t.Fatalf("pages gave %v, want %v", seen, want)
	}

	var one struct {
		Image *imageJSON
		Node  *struct{ ID string }
	}
	e.mustDo(`query ($id: ID!) { image(id: $id) { `+imageFields+` } node(id: $id) { id ... on Image { filename } } }`,
		map[string]any{"id": ids[2]}, &one)
	if one.Image == nil || one.Image.ID != ids[2] || one.Image.Filename != "img-2.png" || one.Node == nil || one.Node.ID != ids[2] {
		t.Fatalf("image/node: %+v", one)
	}
	ditherID := one.Image.Dithers.Edges[0].Node.ID
	var dq struct {
		Dither *struct {
			ID    string
			Image struct{ ID string }
		}
		Node *struct {
			ID     string
			Levels int
		}
	}
	e.mustDo(`query ($id: ID!) { dither(id: $id) { id image { id } } node(id: $id) { id ... on Dither { levels } } }`,
		map[string]any{"id": ditherID}, &dq)
	if dq.Dither == nil || dq.Dither.Image.ID != ids[2] || dq.Node == nil || dq.Node.Levels != 2 {
		t.Fatalf("dither/node: %+v", dq)
	}
	var unknown struct{ Image, Dither, Node *struct{ ID string } }
	e.mustDo(`{ image(id: "0193a0a0-0000-7000-8000-000000000000") { id }
		dither(id: "0193a0a0-0000-7000-8000-000000000000") { id }
		node(id: "0193a0a0-0000-7000-8000-000000000000") { id } }`, nil, &unknown)
	if unknown.Image != nil || unknown.Dither != nil || unknown.Node != nil {
		t.Fatalf("unknown ids resolved: %+v", unknown)
	}
}

func TestHistoryAndImageAt(t *testing.T) {
	// No processors: an automatic dither's outcome must not race the
	// requested dither into the history.
	e := start(t, server.Config{AutoDither: true, NoProcessors: true})
	img := e.mustUpload("h.png", pngBytes(6, 6))
	var rd struct {
		RequestDither struct {
			Dither     *ditherJSON
			UserErrors []userError
		}
	}
	e.mustDo(`mutation ($id: ID!) { requestDither(input: {imageId: $id, levels: 8, algorithm: ATKINSON}) {
		dither { id levels algorithm status } userErrors { field message code } } }`, map[string]any{"id": img.ID}, &rd)
	if rd.RequestDither.Dither == nil || rd.RequestDither.Dither.Levels != 8 || rd.RequestDither.Dither.Status != "PENDING" {
		t.Fatalf("requestDither: %+v", rd.RequestDither)
	}
	var h struct {
		Image struct {
			Version int
			History struct {
				Edges []struct {
					Node struct {
						ID, Type, Position string
						StreamVersion      int
						Data, Metadata     map[string]any
					}
				}
				PageInfo struct {
					HasNextPage bool
					EndCursor   string
				}
			}
		}
	}
	e.mustDo(`query ($id: ID!) { image(id: $id) { version history(first: 2) { edges { node { id type position streamVersion data metadata } }
		pageInfo { hasNextPage endCursor } } } }`, map[string]any{"id": img.ID}, &h)
	edges := h.Image.History.Edges
	if len(edges) != 2 || edges[0].Node.Type != "ImageUploaded" || edges[1].Node.Type != "DitherRequested" ||
		edges[0].Node.StreamVersion != 1 || !h.Image.History.PageInfo.HasNextPage {
		t.Fatalf("history page 1: %+v", h.Image.History)
	}
	if edges[0].Node.Data["sha256"] != img.Sha256 || edges[0].Node.Metadata["correlation_id"] == nil {
		t.Errorf("event data/metadata: %+v / %+v", edges[0].Node.Data, edges[0].Node.Metadata)
	}
	var h2 struct {
		Image struct {
			History struct {
				Edges []struct{ Node struct{ Type string } }
			}
		}
	}
	e.mustDo(`query ($id: ID!, $after: String) { image(id: $id) { history(first: 10, after: $after) { edges { node { type } } } } }`,
		map[string]any{"id": img.ID, "after": h.Image.History.PageInfo.EndCursor}, &h2)
	if len(h2.Image.History.Edges) != 1 || h2.Image.History.Edges[0].Node.Type != "DitherRequested" {
		t.Fatalf("history page 2: %+v", h2)
	}

	var at struct{ ImageAt *imageJSON }
	e.mustDo(`query ($id: ID!) { imageAt(id: $id, version: 1) { `+imageFields+` } }`, map[string]any{"id": img.ID}, &at)
	if at.ImageAt == nil || at.ImageAt.Version != 1 || len(at.ImageAt.Dithers.Edges) != 0 {
		t.Fatalf("imageAt version 1: %+v", at.ImageAt)
	}
	e.mustDo(`query ($id: ID!) { imageAt(id: $id, version: 3) { `+imageFields+` } }`, map[string]any{"id": img.ID}, &at)
	if at.ImageAt.Version != 3 || len(at.ImageAt.Dithers.Edges) != 2 {
		t.Fatalf("imageAt version 3: %+v", at.ImageAt)
	}
	var atHistory struct {
		ImageAt struct {
			History struct {
				Edges    []struct{ Node struct{ StreamVersion int } }
				PageInfo struct{ HasNextPage bool }
			}
		}
	}
	e.mustDo(`query ($id: ID!) { imageAt(id: $id, version: 2) { history(first: 2) { edges { node { streamVersion } } pageInfo { hasNextPage } } } }`,
		map[string]any{"id": img.ID}, &atHistory)
	if h := atHistory.ImageAt.History; len(h.Edges) != 2 || h.Edges[1].Node.StreamVersion != 2 || h.PageInfo.HasNextPage {
		t.Fatalf("imageAt version 2's history: %+v, want versions 1 and 2, and no more", h)
	}
	r := e.do(`query ($id: ID!) { imageAt(id: $id, version: 0) { id } }`, map[string]any{"id": img.ID}, nil)
	if errorCodes(r) != "BAD_USER_INPUT" {
		t.Errorf("imageAt version 0: %+v", r.Errors)
	}
}

// Once every image that used a blob is deleted, the blob (original or
// result) and its thumbnails are answered 404, as an unknown key is; while
// another image uses the same bytes they are served (checked only once
// both are deleted: the twin may stay cached as live), and an upload of
// them serves them again.
func TestDeletedImagesBlobsAreWithdrawn(t *testing.T) {
	e := start(t, server.Config{AutoDither: true})
	data := pngBytes(6, 6)
	first, twin := e.mustUpload("w.png", data), e.mustUpload("twin.png", data)
	// Both get the same automatic dither: the same result bytes.
	var results []string
	for _, img := range []imageJSON{first, twin} {
		eventually(t, "the dither of "+img.Filename+" to complete", func() bool {
			var q struct{ Image imageJSON }
			e.mustDo(`query ($id: ID!) { image(id: $id) { dithers { edges { node { status url } } } } }`,
				map[string]any{"id": img.ID}, &q)
			edges := q.Image.Dithers.Edges
			if len(edges) != 1 || edges[0].Node.Status != "COMPLETED" {
				return false
			}
			results = append(results, *edges[0].Node.URL)
			return true
		})
	}
	if results[0] != results[1] || first.URL != twin.URL {
		t.Fatalf("the twins' blobs differ: %v, %s, %s", results, first.URL, twin.URL)
	}
	urls := []string{first.URL, results[0], e.http.URL + "/thumbs/" + first.Sha256 + "?w=160"}
	// A blob found in use is served for a few seconds without asking
	// again: a deletion takes effect within them.
	expect := func(when string, want int) {
		t.Helper()
		for _, u := range urls {
			eventually(t, fmt.Sprintf("%s: GET %s to answer %d", when, u, want), func() bool {
				status, _, body := get(t, u)
				return status == want && (want != http.StatusNotFound || strings.Contains(string(body), "blob not found"))
			})
		}
	}
	deleteImage := func(img imageJSON) {
		t.Helper()
		e.mustDo(`mutation ($id: ID!) { deleteImage(input: {id: $id}) { deletedImageId } }`, map[string]any{"id": img.ID}, nil)
		eventually(t, "the read model to hold the deletion of "+img.Filename, func() bool {
			var q struct{ Image imageJSON }
			e.mustDo(`query ($id: ID!) { image(id: $id) { status } }`, map[string]any{"id": img.ID}, &q)
			return q.Image.Status == "DELETED"
		})
	}
	expect("both images live", http.StatusOK)
	// A thumbnail's ETag is not its blob key, which /blobs would serve
	// past the checks on its original.
	_, _, thumb := get(t, urls[2])
	if tag := thumbnailTag(t, urls[2]); strings.Contains(tag, blobstore.KeyOf(thumb)) {
		t.Errorf("the thumbnail's ETag %s is its blob key", tag)
	}
	deleteImage(first)
	expect("the twin still live", http.StatusOK)
	deleteImage(twin)
	expect("both images deleted", http.StatusNotFound)
	// Served again once the read model holds the new image: an upload
	// that the log's horizon still hides from readers (another
	// transaction is open) is not seen as a user yet.
	e.mustUpload("again.png", data)
	eventually(t, "the original uploaded again to be served", func() bool {
		status, _, _ := get(t, first.URL)
		return status == http.StatusOK
	})
}

func TestDelete(t *testing.T) {
	e := start(t, server.Config{AutoDither: false})
	img := e.mustUpload("d.png", pngBytes(3, 3))
	del := func() []userError {
		var res struct {
			DeleteImage struct {
				DeletedImageID *string
				UserErrors     []userError
			}
		}
		e.mustDo(`mutation ($id: ID!) { deleteImage(input: {id: $id}) { deletedImageId userErrors { field message code } } }`,
			map[string]any{"id": img.ID}, &res)
		if len(res.DeleteImage.UserErrors) == 0 && (res.DeleteImage.DeletedImageID == nil || *res.DeleteImage.DeletedImageID != img.ID) {
			t.Fatalf("delete: %+v", res)
		}
		return res.DeleteImage.UserErrors
	}
	if ue := del(); len(ue) != 0 {
		t.Fatalf("first delete: %+v", ue)
	}
	before := e.eventCount()
	if ue := del(); len(ue) != 1 || ue[0].Code != "NOT_FOUND" {
		t.Fatalf("second delete: %+v", ue)
	}
	var rd struct {
		RequestDither struct{ UserErrors []userError }
	}
	e.mustDo(`mutation ($id: ID!) { requestDither(input: {imageId: $id}) { userErrors { field message code } } }`,
		map[string]any{"id": img.ID}, &rd)
	if len(rd.RequestDither.UserErrors) != 1 || rd.RequestDither.UserErrors[0].Code != "IMAGE_DELETED" {
		t.Fatalf("dither of a deleted image: %+v", rd)
	}
	if e.eventCount() != before {
		t.Fatal("refused commands appended events")
	}
	var q struct {
		Image  *imageJSON
		Images struct {
			Edges []struct{ Node struct{ ID string } }
		}
	}
	eventually(t, "the read model to drop the image", func() bool {
		e.mustDo(`query ($id: ID!) { image(id: $id) { `+imageFields+` } images { edges { node { id } } } }`, map[string]any{"id": img.ID}, &q)
		return q.Image != nil && q.Image.Status == "DELETED" && len(q.Images.Edges) == 0
	})
}

func TestIdempotentUpload(t *testing.T) {
	e := start(t, server.Config{AutoDither: true, NoProcessors: true}) // counts events
	var first, again uploadResult
	input := func() map[string]any { return map[string]any{"idempotencyKey": "client-key-1"} }
	e.upload("one.png", pngBytes(5, 5), input(), &first)
	n := e.eventCount()
	e.upload("one.png", pngBytes(5, 5), input(), &again)
	if first.UploadImage.Image == nil || again.UploadImage.Image == nil || first.UploadImage.Image.ID != again.UploadImage.Image.ID {
		t.Fatalf("retry gave another image: %+v / %+v", first.UploadImage, again.UploadImage)
	}
	if e.eventCount() != n {
		t.Fatal("the retried upload appended events")
	}
	var other uploadResult
	e.upload("one.png", pngBytes(5, 5), map[string]any{"idempotencyKey": "client-key-2"}, &other)
	if other.UploadImage.Image.ID == first.UploadImage.Image.ID {
		t.Fatal("another key gave the same image")
	}
}

// A page of 20 images with their dithers (and each dither's image) costs
// a small constant number of SQL statements, not one per image.
func TestNoNPlusOne(t *testing.T) {
	e := start(t, server.Config{AutoDither: true, NoProcessors: true})
	for i := range 20 {
		e.mustUpload(fmt.Sprintf("n%d.png", i), pngBytes(3, 3))
	}
	type page struct {
		Images struct {
			Edges []struct {
				Node struct {
					ID      string
					Dithers struct {
						Edges []struct {
							Node struct {
								ID    string
								Image struct{ ID string }
							}
						}
					}
				}
			}
		}
	}
	query := `{ images(first: 20) { edges { node { id filename url dithers { edges { node { id status url image { id filename } } } } } } } }`
	eventually(t, "the read model to hold 20 images", func() bool {
		var p page
		e.mustDo(query, nil, &p)
		return len(p.Images.Edges) == 20
	})
	e.queries.Store(0)
	var p page
	e.mustDo(query, nil, &p)
	for _, edge := range p.Images.Edges {
		if len(edge.Node.Dithers.Edges) != 1 || edge.Node.Dithers.Edges[0].Node.Image.ID != edge.Node.ID {
			t.Fatalf("image %s: dithers %+v", edge.Node.ID, edge.Node.Dithers)
		}
	}
	if n := e.queries.Load(); n > 3 {
		t.Fatalf("a page of 20 images with dithers ran %d SQL statements, want at most 3", n)
	} else {
		t.Logf("%d SQL statements for 20 images, 20 dithers and their images", n)
	}
}

// The notifications of an image's dithers, which the read model does not
// keep, replay the image's stream once per query, not once per dither.
func TestNotificationsReplayOncePerQuery(t *testing.T) {
	e := start(t, server.Config{AutoDither: true, NoProcessors: true})
	img := e.mustUpload("many.png", pngBytes(3, 3))
	for range 5 {
		e.mustDo(`mutation ($id: ID!) { requestDither(input: {imageId: $id, levels: 3}) { dither { id } } }`,
			map[string]any{"id": img.ID}, nil)
	}
	const dithers = `query ($id: ID!) { image(id: $id) { dithers { edges { node { id %s } } } } }`
	type page struct {
		Image struct {
			Dithers struct {
				Edges []struct {
					Node struct{ Notifications []notificationJSON }
				}
			}
		}
	}
	vars := map[string]any{"id": img.ID}
	// Until the read model holds them, the API answers from the stream,
	// notifications included.
	id := uuid.MustParse(img.ID)
	eventually(t, "the read model to hold the 6 dithers", func() bool {
		page, err := e.srv.ReadModel().Dithers(context.Background(), id, 10, "")
		return err == nil && len(page.Items) == 6
	})
	count := func(fields string) int64 {
		e.queries.Store(0)
		var p page
		e.mustDo(fmt.Sprintf(dithers, fields), vars, &p)
		if len(p.Image.Dithers.Edges) != 6 {
			t.Fatalf("%d dithers, want 6", len(p.Image.Dithers.Edges))
		}
		return e.queries.Load()
	}
	// The read cache keeps an answer only once the read model has caught
	// up with what the cache has seen, so a query may miss it now and then
	// (an extra statement): compare counts taken while it answered alike.
	count("")
	for range 10 {
		without, with := count(""), count("notifications { channel status }")
		if count("") != without || count("notifications { channel status }") != with {
			continue // the cache's answers changed in between
		}
		if with-without != 1 {
			t.Fatalf("the notifications of 6 dithers ran %d more SQL statements, want 1 (one replay of the stream)", with-without)
		}
		return
	}
	t.Fatal("no two steady measurements in 10 tries")
}

// GET answers queries (never mutations); errors follow the GraphQL over
// HTTP spec for both media types; GraphiQL is served.
func TestHTTPTransports(t *testing.T) {
	e := start(t, server.Config{NoProcessors: true})
	get := func(query, accept string) (int, string, string) {
		req, _ := http.NewRequest(http.MethodGet, e.http.URL+"/query?query="+url.QueryEscape(query), nil)
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Content-Type"), string(body)
	}
	if code, ct, body := get(`{ images { edges { cursor } } }`, ""); code != 200 || !strings.HasPrefix(ct, "application/json") || !strings.Contains(body, `"edges":[]`) {
		t.Errorf("GET query: %d %s %s", code, ct, body)
	}
	if code, ct, body := get(`{ images { edges { cursor } } }`, "application/graphql-response+json"); code != 200 || !strings.HasPrefix(ct, "application/graphql-response+json") {
		t.Errorf("GET with graphql-response+json: %d %s %s", code, ct, body)
	}
	if code, _, body := get(`mutation { deleteImage(input: {id: "x"}) { userErrors { code } } }`, ""); code < 400 || !strings.Contains(body, "errors") {
		t.Errorf("GET mutation: %d %s, want a 4xx with errors", code, body)
	}
	if code, ct, body := get(`{ images { `, "application/graphql-response+json"); code != 400 || !strings.HasPrefix(ct, "application/graphql-response+json") || !strings.Contains(body, "GRAPHQL_PARSE_FAILED") {
		t.Errorf("GET parse error with graphql-response+json: %d %s %s", code, ct, body)
	}
	resp, err := http.Get(e.http.URL + "/graphiql")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "graphiql") {
		t.Errorf("GraphiQL: %d", resp.StatusCode)
	}
}

// thumbnailTag returns the ETag of a thumbnail.
func thumbnailTag(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("ETag") == "" {
		t.Fatalf("GET %s = %d with ETag %q", url, resp.StatusCode, resp.Header.Get("ETag"))
	}
	return resp.Header.Get("ETag")
}
