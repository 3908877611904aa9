package server_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/imageservice/imageservice/processors"
	"github.com/imageservice/imageservice/processors/cloudsync/cloudsynctest"
	"github.com/imageservice/imageservice/server"
)

// With Cloudinary configured, originals and results are uploaded under
// their deterministic public ids, Image.url and Dither.url then point to
// Cloudinary, a rate-limited answer is retried, and deleting the image
// destroys its assets.
func TestCloudinarySync(t *testing.T) {
	cloud := cloudsynctest.NewServer(t)
	cloud.FailNext(http.StatusTooManyRequests, 1)
	cfg := cloud.Config()
	e := start(t, server.Config{AutoDither: true, Processors: processors.Config{Cloud: &cfg}})
	img := e.mustUpload("cloud.png", pngBytes(16, 16))
	ditherID := img.Dithers.Edges[0].Node.ID

	const cdn = "https://res.cloudinary.com/" // the secure URLs Cloudinary hands out
	var q struct{ Image imageJSON }
	eventually(t, "the original and the dither to reach Cloudinary", func() bool {
		e.mustDo(`query ($id: ID!) { image(id: $id) { `+imageFields+` } }`, map[string]any{"id": img.ID}, &q)
		d := q.Image.Dithers.Edges[0].Node
		return strings.HasPrefix(q.Image.URL, cdn) && d.URL != nil && strings.HasPrefix(*d.URL, cdn)
	})
	if _, ok := cloud.Asset("imageservice/" + img.ID); !ok {
		t.Fatal("no asset for the original")
	}
	if _, ok := cloud.Asset("imageservice/" + img.ID + "/" + ditherID); !ok {
		t.Fatal("no asset for the dither")
	}
	if n := cloud.AssetCount(); n != 2 {
		t.Fatalf("%d assets, want 2", n)
	}

	var del struct {
		DeleteImage struct{ UserErrors []userError }
	}
	e.mustDo(`mutation ($id: ID!) { deleteImage(input: {id: $id}) { userErrors { code } } }`, map[string]any{"id": img.ID}, &del)
	eventually(t, "the assets to be destroyed", func() bool { return cloud.AssetCount() == 0 })
}
