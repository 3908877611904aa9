package server_test

import (
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/imageservice/imageservice/internal/testlog"
	"github.com/imageservice/imageservice/internal/testwait"
	"github.com/imageservice/imageservice/processors"
	"github.com/imageservice/imageservice/server"
)

// On the embedded default, an attempt at a dither that runs out of
// JOB_TIMEOUT is tried again, and the last of DitherMaxAttempts is
// recorded FAILED: through GraphQL the dither is FAILED with a reason, its
// image's history ends with the DitherFailed, and the log shows each
// attempt before the last failing for want of time. The timeout is a
// nanosecond, so every attempt runs out of time before it has done
// anything, whatever the machine's speed; the retries start after a
// millisecond instead of a second, so the whole schedule takes about
// 130 ms.
func TestEmbeddedDitherOutOfTimeIsRetriedThenFailed(t *testing.T) {
	var logs testlog.Buffer
	e := startEmbedded(t, server.Config{AutoDither: true, Logger: slog.New(slog.NewJSONHandler(&logs, nil)),
		Processors: processors.Config{JobTimeout: time.Nanosecond, InlineRetryBase: time.Millisecond}})
	img := e.mustUpload("slow.png", pngBytes(40, 30))
	if len(img.Dithers.Edges) != 1 {
		t.Fatalf("the upload's dithers: %+v, want the automatic one", img.Dithers)
	}
	ditherID := img.Dithers.Edges[0].Node.ID
	vars := map[string]any{"id": img.ID}
	var q struct {
		Image struct {
			imageJSON
			History struct {
				Edges []struct {
					Node struct {
						Type string
						Data json.RawMessage
					}
				}
			}
		}
	}
	const query = `query ($id: ID!) { image(id: $id) { ` + imageFields + ` history(first: 10) { edges { node { type data } } } } }`
	var retried, seen int
	testwait.Until(t, 5*time.Minute, "the dither to be recorded FAILED", func() bool {
		// GraphQL is asked again whenever the log grew (an attempt
		// ended), and at every turn once the last attempt has ended.
		l := logs.String()
		if len(l) == seen && !strings.Contains(l, `"msg":"dither failed for good"`) {
			return false
		}
		seen = len(l)
		e.mustDo(query, vars, &q)
		d := q.Image.Dithers.Edges[0].Node
		// Counted after reading the status: an attempt is logged as
		// failed before the next one starts.
		retried = outOfTime(logs.String(), ditherID)
		if d.Status != "PENDING" && retried < processors.DitherMaxAttempts-1 {
			t.Fatalf("the dither is %s after %d attempts out of time, want PENDING until the last of %d",
				d.Status, retried, processors.DitherMaxAttempts)
		}
		return d.Status != "PENDING"
	})
	d := q.Image.Dithers.Edges[0].Node
	if d.Status != "FAILED" || d.Error == nil || *d.Error == "" || d.URL != nil {
		t.Fatalf("the dither after its last attempt: %+v, want FAILED with a reason and no result", d)
	}
	if retried != processors.DitherMaxAttempts-1 || !strings.Contains(logs.String(), `"msg":"dither failed for good"`) {
		t.Errorf("%d attempts logged out of time before the last, want %d, and the last logged as failed for good:\n%s",
			retried, processors.DitherMaxAttempts-1, logs.String())
	}
	h := q.Image.History.Edges
	if n := len(h); n != 3 || h[0].Node.Type != "ImageUploaded" || h[1].Node.Type != "DitherRequested" ||
		h[2].Node.Type != "DitherFailed" || !strings.Contains(string(h[2].Node.Data), *d.Error) {
		t.Fatalf("history %+v, want the upload, the request and one DitherFailed with the reason %q", h, *d.Error)
	}
}

// outOfTime counts the attempts at the dither that the log shows failing
// for want of time: the inline processor's dither parked for another.
func outOfTime(logs, ditherID string) int {
	n := 0
	for line := range strings.Lines(logs) {
		var l struct{ Msg, Err, Dither string }
		if json.Unmarshal([]byte(line), &l) == nil && l.Msg == "dither attempt failed; trying again later" &&
			l.Dither == ditherID && strings.Contains(l.Err, "context deadline exceeded") {
			n++
		}
	}
	return n
}
