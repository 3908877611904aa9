// Package testexif writes an EXIF orientation into JPEG and PNG files, for
// the tests of what reads it.
package testexif

import (
	"encoding/binary"
	"hash/crc32"
)

// TIFF returns an Exif TIFF structure (big-endian) whose IFD0 holds one
// entry: orientation o (1..8; 6 is "turn 90 degrees clockwise to show
// upright").
func TIFF(o int) []byte {
	t := []byte("MM\x00\x2a\x00\x00\x00\x08" + // header, IFD0 at 8
		"\x00\x01" + // one entry
		"\x01\x12\x00\x03\x00\x00\x00\x01\x00\x00\x00\x00" + // 0x0112 SHORT 1 = o
		"\x00\x00\x00\x00") // no next IFD
	binary.BigEndian.PutUint16(t[18:], uint16(o))
	return t
}

// JPEG puts an Exif APP1 segment with orientation o after the SOI marker
// of the JPEG file jpg.
func JPEG(jpg []byte, o int) []byte {
	payload := append([]byte("Exif\x00\x00"), TIFF(o)...)
	out := append([]byte{}, jpg[:2]...)
	out = append(out, 0xff, 0xe1)
	out = binary.BigEndian.AppendUint16(out, uint16(len(payload)+2))
	return append(append(out, payload...), jpg[2:]...)
}

// PNG puts an eXIf chunk with orientation o right after the IHDR chunk of
// the PNG file p, where the PNG specification places it.
func PNG(p []byte, o int) []byte {
	const afterIHDR = 8 + 25
	tiff := TIFF(o)
	chunk := append([]byte("eXIf"), tiff...)
	out := append([]byte{}, p[:afterIHDR]...)
	out = binary.BigEndian.AppendUint32(out, uint32(len(tiff)))
	out = append(out, chunk...)
	out = binary.BigEndian.AppendUint32(out, crc32.ChecksumIEEE(chunk))
	return append(out, p[afterIHDR:]...)
}
