package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"image"
	"image/png"
	"testing"

	"github.com/coder/websocket"

	"github.com/imageservice/imageservice/server"
)

// The whole flow over GraphQL: upload, the automatic dither completes, a
// ditherCompleted subscriber is told, and the result is a valid PNG with at
// most levels^3 colours. Then a Bayer 8x8 dither with 4 levels.
func TestDitherFlow(t *testing.T) {
	e := start(t, server.Config{AutoDither: true})
	c := dialWS(t, e, "graphql-transport-ws")
	send(t, c, map[string]any{"id": "all", "type": "subscribe", "payload": map[string]any{"query": ditherCompletedSub}})
	eventually(t, "the subscription to open", func() bool { return e.subscribers() == 1 })

	img := e.mustUpload("photo.png", pngBytes(64, 48))
	d := nextCompleted(t, c)
	if d.ID != img.Dithers.Edges[0].Node.ID || d.Status != "COMPLETED" || d.Image.ID != img.ID {
		t.Fatalf("ditherCompleted = %+v", d)
	}
	checkResult(t, *d.URL, 64, 48, 2*2*2)

	var rd struct {
		RequestDither struct {
			Dither     *ditherJSON
			UserErrors []userError
		}
	}
	e.mustDo(`mutation ($id: ID!) { requestDither(input: {imageId: $id, levels: 4, algorithm: BAYER_8X8}) {
		dither { id } userErrors { code } } }`, map[string]any{"id": img.ID}, &rd)
	d = nextCompleted(t, c)
	if rd.RequestDither.Dither == nil || d.ID != rd.RequestDither.Dither.ID || d.Status != "COMPLETED" {
		t.Fatalf("second ditherCompleted = %+v for %+v", d, rd.RequestDither)
	}
	checkResult(t, *d.URL, 64, 48, 4*4*4)

	eventually(t, "the job stats to count both dithers", func() bool {
		stats, err := e.srv.Processors().Stats(context.Background())
		if err != nil || stats.Failed != 0 {
			t.Fatalf("job stats %+v, %v", stats, err)
		}
		return stats.Completed == 2 && stats.Running == 0 && stats.DitherP50 > 0
	})
	eventually(t, "the read model to show both dithers completed", func() bool {
		var q struct{ Image imageJSON }
		e.mustDo(`query ($id: ID!) { image(id: $id) { `+imageFields+` } }`, map[string]any{"id": img.ID}, &q)
		for _, edge := range q.Image.Dithers.Edges {
			if edge.Node.Status != "COMPLETED" || edge.Node.URL == nil {
				return false
			}
		}
		return len(q.Image.Dithers.Edges) == 2
	})
}

// nextCompleted reads the next ditherCompleted from a websocket.
func nextCompleted(t *testing.T, c *websocket.Conn) struct {
	ID, Status string
	URL        *string
	DurationMs int
	Colours    int
	Image      struct{ ID string }
} {
	t.Helper()
	m := receive(t, c)
	if m.Type != "next" {
		t.Fatalf("got %s %s, want next", m.Type, m.Payload)
	}
	var p struct{ Data completed }
	if err := json.Unmarshal(m.Payload, &p); err != nil {
		t.Fatal(err)
	}
	return p.Data.DitherCompleted
}

// checkResult fetches a result and checks it is a PNG of the size with at
// most maxColours colours.
func checkResult(t *testing.T, url string, w, h, maxColours int) {
	t.Helper()
	code, ct, body := get(t, url)
	if code != 200 || ct != "image/png" {
		t.Fatalf("GET %s = %d %s", url, code, ct)
	}
	img, err := png.Decode(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("result is not a PNG: %v", err)
	}
	if b := img.Bounds(); b.Dx() != w || b.Dy() != h {
		t.Fatalf("result is %v, want %dx%d", b, w, h)
	}
	colours := map[[4]uint32]bool{}
	for y := range h {
		for x := range w {
			r, g, b, a := img.At(x, y).RGBA()
			colours[[4]uint32{r, g, b, a}] = true
		}
	}
	if len(colours) > maxColours || len(colours) < 2 {
		t.Fatalf("result has %d colours, want 2..%d", len(colours), maxColours)
	}
	if _, ok := img.(*image.Paletted); !ok {
		t.Errorf("result with %d colours is %T, want a paletted PNG", len(colours), img)
	}
}
