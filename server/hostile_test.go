package server_test

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	"image/gif"
	"runtime"
	"strings"
	"testing"

	"github.com/imageservice/imageservice/server"
)

// pngHeader returns a PNG whose header claims w x h and whose data is missing.
func pngHeader(w, h uint32) []byte {
	var b bytes.Buffer
	b.WriteString("\x89PNG\r\n\x1a\n")
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], w)
	binary.BigEndian.PutUint32(ihdr[4:], h)
	ihdr[8], ihdr[9] = 8, 6 // 8-bit RGBA
	chunk := append([]byte("IHDR"), ihdr...)
	_ = binary.Write(&b, binary.BigEndian, uint32(len(ihdr)))
	b.Write(chunk)
	_ = binary.Write(&b, binary.BigEndian, crc32.ChecksumIEEE(chunk))
	return b.Bytes()
}

// gifHeader returns a GIF whose logical screen claims w x h.
func gifHeader(w, h uint16) []byte {
	var b bytes.Buffer
	b.WriteString("GIF89a")
	_ = binary.Write(&b, binary.LittleEndian, w)
	_ = binary.Write(&b, binary.LittleEndian, h)
	b.Write([]byte{0, 0, 0, ';'})
	return b.Bytes()
}

// jpegHeader returns a small JPEG whose frame header is patched to claim w x h.
func jpegHeader(w, h uint16) []byte {
	data := jpegBytes(8, 8)
	i := bytes.Index(data, []byte{0xFF, 0xC0})
	binary.BigEndian.PutUint16(data[i+5:], h)
	binary.BigEndian.PutUint16(data[i+7:], w)
	return data
}

// manyFrames is a small GIF of n frames.
func manyFrames(n int) []byte {
	pal := color.Palette{color.Black, color.White}
	g := &gif.GIF{}
	for i := range n {
		f := image.NewPaletted(image.Rect(0, 0, 2, 2), pal)
		f.Pix[i%4] = 1
		g.Image = append(g.Image, f)
		g.Delay = append(g.Delay, 0)
	}
	var b bytes.Buffer
	_ = gif.EncodeAll(&b, g)
	return b.Bytes()
}

// Hostile input: each answered with a clear error, no panic, nothing
// appended, memory growth bounded.
func TestHostileInput(t *testing.T) {
	e := start(t, server.Config{NoProcessors: true, MaxUploadBytes: 8 << 20})
	before := e.eventCount()
	var m0 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	uploads := []struct {
		name string
		data []byte
		code string
	}{
		{"huge.png", pngHeader(100000, 100000), "TOO_MANY_PIXELS"},
		{"huge.gif", gifHeader(65535, 65535), "TOO_MANY_PIXELS"},
		{"huge.jpg", jpegHeader(65535, 65535), "TOO_MANY_PIXELS"},
		{"page.png", []byte("<!doctype html><html><body>hello</body></html>"), "UNSUPPORTED_FORMAT"},
		{"vector.png", []byte(`<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>`), "UNSUPPORTED_FORMAT"},
		{"over-cap.png", append(pngBytes(4, 4), make([]byte, 9<<20)...), "FILE_TOO_LARGE"},
	}
	for _, u := range uploads {
		var res uploadResult
		r := e.upload(u.name, u.data, nil, &res)
		ue := res.UploadImage.UserErrors
		if errorCodes(r) == u.code { // refused before GraphQL (a body over the cap)
			continue
		}
		if len(r.Errors) > 0 || len(ue) != 1 || ue[0].Code != u.code {
			t.Errorf("%s: errors %+v, userErrors %+v, want %s", u.name, r.Errors, ue, u.code)
		}
	}
	// A GIF of 10,000 frames is taken, by its first frame only.
	var res uploadResult
	e.upload("frames.gif", manyFrames(10000), map[string]any{"autoDither": false}, &res)
	if res.UploadImage.Image == nil || res.UploadImage.Image.Width != 2 {
		t.Errorf("10,000-frame GIF: %+v", res.UploadImage)
	}
	// Names with ../ and NUL bytes are cleaned to a label.
	res = uploadResult{}
	e.upload("x.png", pngBytes(2, 2), map[string]any{"autoDither": false, "filename": "../../etc/pass\x00wd.png"}, &res)
	if img := res.UploadImage.Image; img == nil || strings.ContainsAny(img.Filename, "/\\\x00") || strings.Contains(img.Filename, "..") {
		t.Errorf("hostile filename kept as %+v", res.UploadImage)
	}
	if n := e.eventCount() - before; n != 2 {
		t.Errorf("hostile uploads appended %d events, want 2 (the two legitimate uploads)", n)
	}

	aliases := make([]string, 10000)
	for i := range aliases {
		aliases[i] = "a" + strings.Repeat("b", i%7) + string(rune('a'+i%26)) + string(rune('a'+(i/26)%26)) + string(rune('a'+(i/676)%26)) + ": __typename"
	}
	queries := []struct{ name, query string }{
		{"10,000 aliases", "{ " + strings.Join(aliases, " ") + " }"},
		{"1,000-deep nesting", strings.Repeat("{ images { edges { node ", 1000) + strings.Repeat("} } }", 1000)},
		{"absurd pagination", `{ images(first: 2147483647) { edges { cursor } } }`},
		{"negative pagination", `{ images(first: -5) { edges { cursor } } }`},
		{"invalid id", `{ image(id: "'; DROP TABLE events; --") { id } }`},
	}
	for _, q := range queries {
		r := e.do(q.query, nil, nil)
		if len(r.Errors) == 0 || errorCodes(r) == "" || strings.Contains(errorCodes(r), "INTERNAL") {
			t.Errorf("%s: %d errors, codes %q", q.name, len(r.Errors), errorCodes(r))
		}
	}
	var m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m1)
	if grown := int64(m1.HeapAlloc) - int64(m0.HeapAlloc); grown > 256<<20 {
		t.Errorf("the heap grew by %d MiB", grown>>20)
	}
	if e.eventCount() != before+2 {
		t.Error("hostile queries appended events")
	}
}
