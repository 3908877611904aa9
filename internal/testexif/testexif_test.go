package testexif_test

import (
	"bytes"
	"image"
	"image/jpeg"
	"image/png"
	"testing"

	"github.com/imageservice/imageservice/imagefile"
	"github.com/imageservice/imageservice/internal/testexif"
)

// The files written carry the orientation that imagefile reads.
func TestOrientationIsRead(t *testing.T) {
	img := image.NewGray(image.Rect(0, 0, 4, 3))
	var p, j bytes.Buffer
	if err := png.Encode(&p, img); err != nil {
		t.Fatal(err)
	}
	if err := jpeg.Encode(&j, img, nil); err != nil {
		t.Fatal(err)
	}
	for o := 1; o <= 8; o++ {
		for name, data := range map[string][]byte{"png": testexif.PNG(p.Bytes(), o), "jpeg": testexif.JPEG(j.Bytes(), o)} {
			if _, info, err := imagefile.Decode(bytes.NewReader(data), imagefile.Limits{}); err != nil || info.Orientation != o {
				t.Errorf("%s with orientation %d: read %d, %v", name, o, info.Orientation, err)
			}
		}
	}
}
