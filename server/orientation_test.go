package server_test

import (
	"testing"

	"github.com/imageservice/imageservice/internal/testexif"
	"github.com/imageservice/imageservice/server"
)

// An upload records the size of the image as it shows upright: a 40x30
// file whose EXIF says "turn 90 degrees" is a 30x40 image, whether the
// EXIF is a JPEG's APP1 or a PNG's eXIf chunk. The file is kept as sent.
func TestUploadRecordsUprightSize(t *testing.T) {
	e := start(t, server.Config{})
	for _, f := range []struct {
		name string
		data []byte
	}{
		{"turned.jpg", testexif.JPEG(jpegBytes(40, 30), 6)},
		{"turned.png", testexif.PNG(pngBytes(40, 30), 6)},
		{"upright.png", pngBytes(40, 30)},
	} {
		want := [2]int{30, 40}
		if f.name == "upright.png" {
			want = [2]int{40, 30}
		}
		img := e.mustUpload(f.name, f.data)
		if got := [2]int{img.Width, img.Height}; got != want || img.ByteSize != len(f.data) {
			t.Errorf("%s: recorded %dx%d (%d bytes), want %dx%d (%d bytes)", f.name, got[0], got[1], img.ByteSize, want[0], want[1], len(f.data))
		}
	}
}
