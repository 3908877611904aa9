package images_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/imageservice/imageservice/images"
)

func TestCleanFilename(t *testing.T) {
	long := strings.Repeat("é", 300) + ".png"
	tests := []struct{ in, want string }{
		{"cat.png", "cat.png"},
		{"  my   holiday\tphoto.jpg  ", "my holiday photo.jpg"},
		{"../../etc/passwd", "passwd"},
		{`C:\Users\bob\Desktop\dog.png`, "dog.png"},
		{"dir/", "dir"},
		{"a\x00b\x1fc\x7f.png", "abc.png"},
		{"evil\u202egnp.exe", "evilgnp.exe"},
		{"bad\xff\xfeutf8.png", "badutf8.png"},
		{"", "image"},
		{"   ", "image"},
		{".", "image"},
		{"..", "image"},
		{"/", "image"},
		{"\x00\x01", "image"},
		{".hidden", ".hidden"},
		{"日本語.png", "日本語.png"},
	}
	for _, tt := range tests {
		if got := images.CleanFilename(tt.in); got != tt.want {
			t.Errorf("CleanFilename(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	got := images.CleanFilename(long)
	if len(got) > images.MaxFilenameLen || !strings.HasSuffix(got, ".png") || !utf8.ValidString(got) {
		t.Errorf("long name cleaned to %q (%d bytes)", got, len(got))
	}
	noExt := images.CleanFilename(strings.Repeat("x", 1000))
	if len(noExt) != images.MaxFilenameLen {
		t.Errorf("long name without extension: %d bytes", len(noExt))
	}
}

func TestStreamID(t *testing.T) {
	s := images.StreamID(imageID)
	if s != "image-"+imageID.String() {
		t.Fatalf("StreamID = %q", s)
	}
	id, err := images.ParseStreamID(s)
	if err != nil || id != imageID {
		t.Fatalf("ParseStreamID(%q) = %v, %v", s, id, err)
	}
	for _, bad := range []string{"", "image-", "dither-" + imageID.String(), "image-not-a-uuid",
		"image-" + strings.ReplaceAll(imageID.String(), "-", ""), "image-{" + imageID.String() + "}"} {
		if _, err := images.ParseStreamID(bad); err == nil {
			t.Errorf("ParseStreamID(%q) succeeded", bad)
		}
	}
}

func TestOutcomeEventID(t *testing.T) {
	a := images.OutcomeEventID(ditherID, "completed")
	if a != images.OutcomeEventID(ditherID, "completed") {
		t.Fatal("not deterministic")
	}
	if a == images.OutcomeEventID(ditherID, "failed") || a == images.OutcomeEventID(otherID, "completed") {
		t.Fatal("collision")
	}
	if a.Version() != 5 || a == uuid.Nil {
		t.Fatalf("version %d", a.Version())
	}
}
