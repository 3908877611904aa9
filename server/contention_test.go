package server_test

import (
	"fmt"
	"sync"
	"testing"

	"github.com/imageservice/imageservice/server"
)

// Many dither requests for one image at once all succeed: writers that
// lose the race for the image's next version retry, and none is told of
// an internal error.
func TestConcurrentRequestsOnOneImage(t *testing.T) {
	e := start(t, server.Config{NoProcessors: true})
	img := e.mustUpload("busy.png", pngBytes(4, 4))
	const n = 32
	type answer struct {
		errors  int
		dither  bool
		problem string
	}
	answers := make([]answer, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			var out struct {
				RequestDither struct {
					Dither     *struct{ ID string }
					UserErrors []userError
				}
			}
			r := e.do(`mutation ($id: ID!) { requestDither(input: {imageId: $id, levels: 3}) { dither { id } userErrors { code message } } }`,
				map[string]any{"id": img.ID}, &out)
			answers[i] = answer{errors: len(r.Errors), dither: out.RequestDither.Dither != nil}
			if len(r.Errors) > 0 {
				answers[i].problem = fmt.Sprintf("%+v", r.Errors[0])
			} else if ue := out.RequestDither.UserErrors; len(ue) > 0 {
				answers[i].problem = ue[0].Code + ": " + ue[0].Message
			}
		})
	}
	wg.Wait()
	for i, a := range answers {
		if a.errors > 0 || !a.dither {
			t.Errorf("request %d: no dither (%s)", i, a.problem)
		}
	}
	eventually(t, "the image to have one more event per request", func() bool {
		var q struct{ Image struct{ Version int } }
		e.mustDo(`query ($id: ID!) { image(id: $id) { version } }`, map[string]any{"id": img.ID}, &q)
		if q.Image.Version > img.Version+n {
			t.Fatalf("the image is at version %d, want %d", q.Image.Version, img.Version+n)
		}
		return q.Image.Version == img.Version+n
	})
}
