package server_test

import (
	"encoding/binary"
	"hash/crc32"
	"testing"

	"github.com/imageservice/imageservice/server"
)

// tiffOrientation6 is an Exif TIFF structure (big-endian) whose IFD0 holds
// one entry: orientation 6, "turn 90 degrees clockwise to show upright".
var tiffOrientation6 = []byte("MM\x00\x2a\x00\x00\x00\x08" + // header, IFD0 at 8
	"\x00\x01" + // one entry
	"\x01\x12\x00\x03\x00\x00\x00\x01\x00\x06\x00\x00" + // 0x0112 SHORT 1 = 6
	"\x00\x00\x00\x00") // no next IFD

// jpegOrientation6 puts an Exif APP1 segment with orientation 6 after the
// SOI marker of a JPEG.
func jpegOrientation6(jpg []byte) []byte {
	payload := append([]byte("Exif\x00\x00"), tiffOrientation6...)
	out := append([]byte{}, jpg[:2]...)
	out = append(out, 0xff, 0xe1)
	out = binary.BigEndian.AppendUint16(out, uint16(len(payload)+2))
	return append(append(out, payload...), jpg[2:]...)
}

// pngOrientation6 puts an eXIf chunk with orientation 6 right after the
// IHDR chunk of a PNG, where the PNG specification places it.
func pngOrientation6(p []byte) []byte {
	const afterIHDR = 8 + 25
	chunk := append([]byte("eXIf"), tiffOrientation6...)
	out := append([]byte{}, p[:afterIHDR]...)
	out = binary.BigEndian.AppendUint32(out, uint32(len(tiffOrientation6)))
	out = append(out, chunk...)
	out = binary.BigEndian.AppendUint32(out, crc32.ChecksumIEEE(chunk))
	return append(out, p[afterIHDR:]...)
}

// An upload records the size of the image as it shows upright: a 40x30
// file whose EXIF says "turn 90 degrees" is a 30x40 image, whether the
// EXIF is a JPEG's APP1 or a PNG's eXIf chunk. The file is kept as sent.
func TestUploadRecordsUprightSize(t *testing.T) {
	e := start(t, server.Config{})
	for _, f := range []struct {
		name string
		data []byte
	}{
		{"turned.jpg", jpegOrientation6(jpegBytes(40, 30))},
		{"turned.png", pngOrientation6(pngBytes(40, 30))},
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
