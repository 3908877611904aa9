package server_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/imageservice/imageservice/server"
)

// Every bad input gets a userErrors entry or a GraphQL error with a code,
// and nothing is appended.
func TestBadInput(t *testing.T) {
	e := start(t, server.Config{AutoDither: true, MaxUploadBytes: 64 << 10, MaxPixels: 100 * 100, NoProcessors: true})
	good := e.mustUpload("good.png", pngBytes(10, 10))
	before := e.eventCount()

	uploads := []struct {
		name string
		data []byte
		code string
	}{
		{"not-an-image.png", []byte("this is plain text, not a PNG"), "UNSUPPORTED_FORMAT"},
		{"script.png", []byte("<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>"), "UNSUPPORTED_FORMAT"},
		{"empty.png", nil, "INVALID_INPUT"},
		{"truncated.png", truncated(pngBytes(90, 90)), "CORRUPT_IMAGE"},
		{"truncated.jpg", truncated(jpegBytes(90, 90)), "CORRUPT_IMAGE"},
		{"too-many-pixels.png", pngBytes(101, 100), "TOO_MANY_PIXELS"},
		{"too-large.png", append(pngBytes(10, 10), bytes.Repeat([]byte{0}, 70<<10)...), "FILE_TOO_LARGE"},
	}
	for _, u := range uploads {
		var res uploadResult
		r := e.upload(u.name, u.data, nil, &res)
		ue := res.UploadImage.UserErrors
		if len(r.Errors) > 0 || len(ue) != 1 || ue[0].Code != u.code || ue[0].Field != "file" || res.UploadImage.Image != nil {
			t.Errorf("%s: errors %+v, userErrors %+v, want code %s", u.name, r.Errors, ue, u.code)
		}
	}
	var keyed uploadResult
	r := e.upload("keyed.png", pngBytes(4, 4), map[string]any{"idempotencyKey": "a\x00b"}, &keyed)
	if ue := keyed.UploadImage.UserErrors; len(r.Errors) > 0 || len(ue) != 1 || ue[0].Code != "INVALID_INPUT" || ue[0].Field != "idempotencyKey" {
		t.Errorf("upload with a NUL in its idempotency key: %+v %+v", r.Errors, ue)
	}
	for _, levels := range []int{0, 1} {
		var res uploadResult
		r = e.upload("bad-levels.png", pngBytes(4, 4), map[string]any{"dither": map[string]any{"levels": levels}}, &res)
		if ue := res.UploadImage.UserErrors; len(r.Errors) > 0 || len(ue) != 1 || ue[0].Code != "INVALID_LEVELS" || ue[0].Field != "dither.levels" {
			t.Errorf("upload with levels %d: %+v %+v", levels, r.Errors, res.UploadImage.UserErrors)
		}
	}

	dithers := []struct {
		name        string
		input       map[string]any
		code, field string
	}{
		{"levels 0", map[string]any{"imageId": good.ID, "levels": 0}, "INVALID_LEVELS", "levels"},
		{"levels 1", map[string]any{"imageId": good.ID, "levels": 1}, "INVALID_LEVELS", "levels"},
		{"levels 257", map[string]any{"imageId": good.ID, "levels": 257}, "INVALID_LEVELS", "levels"},
		{"strength 2", map[string]any{"imageId": good.ID, "strength": 2.0}, "INVALID_STRENGTH", "strength"},
		{"unknown image", map[string]any{"imageId": "0193a0a0-0000-7000-8000-000000000000"}, "NOT_FOUND", "imageId"},
		{"malformed id", map[string]any{"imageId": "not-a-uuid"}, "INVALID_INPUT", "imageId"},
		{"unknown palette", map[string]any{"imageId": good.ID, "palette": "nope"}, "INVALID_PALETTE", "palette"},
		{"NUL in the idempotency key", map[string]any{"imageId": good.ID, "idempotencyKey": "a\x00b"}, "INVALID_INPUT", "idempotencyKey"},
	}
	for _, d := range dithers {
		var out struct {
			RequestDither struct{ UserErrors []userError }
		}
		r := e.do(`mutation ($input: RequestDitherInput!) { requestDither(input: $input) { dither { id } userErrors { field message code } } }`,
			map[string]any{"input": d.input}, &out)
		ue := out.RequestDither.UserErrors
		if len(r.Errors) > 0 || len(ue) != 1 || ue[0].Code != d.code || ue[0].Field != d.field || ue[0].Message == "" {
			t.Errorf("requestDither %s: errors %+v, userErrors %+v, want %s on %s", d.name, r.Errors, ue, d.code, d.field)
		}
	}

	queries := []struct {
		name, query, code string
		vars              map[string]any
	}{
		{"enum value in lower case", `mutation ($a: DitherAlgorithm!) { requestDither(input: {imageId: "` + good.ID + `", algorithm: $a}) { dither { id } } }`,
			"BAD_USER_INPUT", map[string]any{"a": "floyd_steinberg"}},
		{"upload as a string", `mutation ($f: Upload!) { uploadImage(input: {file: $f}) { image { id } } }`,
			"BAD_USER_INPUT", map[string]any{"f": "not a file"}},
		{"first 1000", `{ images(first: 1000) { edges { cursor } } }`, "BAD_USER_INPUT", nil},
		{"first 0", `{ images(first: 0) { edges { cursor } } }`, "BAD_USER_INPUT", nil},
		{"garbage cursor", `{ images(after: "garbage") { edges { cursor } } }`, "BAD_USER_INPUT", nil},
		{"malformed image id", `{ image(id: "123") { id } }`, "BAD_USER_INPUT", nil},
		{"malformed node id", `{ node(id: "x") { id } }`, "BAD_USER_INPUT", nil},
		{"unknown algorithm", `mutation { requestDither(input: {imageId: "` + good.ID + `", algorithm: MAGIC}) { dither { id } } }`, "GRAPHQL_VALIDATION_FAILED", nil},
		{"syntax error", `{ images { `, "GRAPHQL_PARSE_FAILED", nil},
	}
	for _, q := range queries {
		r := e.do(q.query, q.vars, nil)
		if got := errorCodes(r); got != q.code {
			t.Errorf("%s: error codes %q (%+v), want %s", q.name, got, r.Errors, q.code)
		}
	}
	if after := e.eventCount(); after != before {
		t.Fatalf("bad input appended %d events", after-before)
	}
}

// truncated cuts the last third off a file.
func truncated(data []byte) []byte { return data[:len(data)*2/3] }

// A fault of the service is shown as an internal error, without its
// details, and is not mistaken for bad input.
func TestInternalErrorsHideTheirDetails(t *testing.T) {
	e := start(t, server.Config{NoProcessors: true})
	if _, err := e.pool.Exec(context.Background(), "ALTER TABLE image_view RENAME TO image_view_gone"); err != nil {
		t.Fatal(err)
	}
	r := e.do(`{ images { edges { node { id } } } }`, nil, nil)
	if len(r.Errors) != 1 || errorCodes(r) != "INTERNAL_SERVER_ERROR" || r.Errors[0].Message != "internal error" {
		t.Errorf("errors %+v, want one INTERNAL_SERVER_ERROR saying only \"internal error\"", r.Errors)
	}
}
