package cloudsync_test

import (
	"strings"
	"testing"

	"github.com/imageservice/imageservice/processors/cloudsync"
)

func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

func TestFromEnvOff(t *testing.T) {
	cfg, on, err := cloudsync.FromEnv(env(nil))
	if cfg != nil || on || err != nil {
		t.Fatalf("nothing set: got %v, %v, %v; want off", cfg, on, err)
	}
}

func TestFromEnvURL(t *testing.T) {
	cfg, on, err := cloudsync.FromEnv(env(map[string]string{
		"CLOUDINARY_URL": "cloudinary://1234:s3cr3t-VALUE@my-cloud?signature_algorithm=sha256&upload_prefix=http://127.0.0.1:9/",
	}))
	if err != nil || !on {
		t.Fatalf("got %v, %v", on, err)
	}
	want := cloudsync.Config{CloudName: "my-cloud", APIKey: "1234", APISecret: "s3cr3t-VALUE",
		UploadPrefix: "http://127.0.0.1:9", SignatureAlgorithm: "sha256"}
	if *cfg != want {
		t.Fatalf("got %+v, want %+v", *cfg, want)
	}
	if s := cfg.String(); strings.Contains(s, "s3cr3t") {
		t.Fatalf("String shows the secret: %s", s)
	}
}

func TestFromEnvParts(t *testing.T) {
	cfg, on, err := cloudsync.FromEnv(env(map[string]string{
		"CLOUDINARY_CLOUD_NAME": "c", "CLOUDINARY_API_KEY": "k", "CLOUDINARY_API_SECRET": "s3cr3t-VALUE",
		"CLOUDINARY_UPLOAD_PREFIX": "https://api-eu.cloudinary.com",
	}))
	if err != nil || !on {
		t.Fatalf("got %v, %v", on, err)
	}
	want := cloudsync.Config{CloudName: "c", APIKey: "k", APISecret: "s3cr3t-VALUE", UploadPrefix: "https://api-eu.cloudinary.com"}
	if *cfg != want {
		t.Fatalf("got %+v, want %+v", *cfg, want)
	}
}

func TestFromEnvErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		vars map[string]string
		want string // the error names this
	}{
		{"partial: no secret", map[string]string{"CLOUDINARY_CLOUD_NAME": "c", "CLOUDINARY_API_KEY": "k"}, "CLOUDINARY_API_SECRET"},
		{"partial: only secret", map[string]string{"CLOUDINARY_API_SECRET": "s3cr3t-VALUE"}, "CLOUDINARY_CLOUD_NAME, CLOUDINARY_API_KEY"},
		{"url: wrong scheme", map[string]string{"CLOUDINARY_URL": "https://k:s3cr3t-VALUE@c"}, "CLOUDINARY_URL"},
		{"url: no secret", map[string]string{"CLOUDINARY_URL": "cloudinary://k@c"}, "CLOUDINARY_URL has no API secret"},
		{"url: no cloud", map[string]string{"CLOUDINARY_URL": "cloudinary://k:s3cr3t-VALUE@"}, "CLOUDINARY_URL has no cloud name"},
		{"url: unparsable", map[string]string{"CLOUDINARY_URL": "cloudinary://k:s3cr3t-VALUE@c/%zz\x7f"}, "CLOUDINARY_URL is not a valid URL"},
		{"url: bad algorithm", map[string]string{"CLOUDINARY_URL": "cloudinary://k:s3cr3t-VALUE@c?signature_algorithm=md5"}, "signature algorithm"},
		{"bad prefix", map[string]string{"CLOUDINARY_URL": "cloudinary://k:s3cr3t-VALUE@c", "CLOUDINARY_UPLOAD_PREFIX": "ftp://x"}, "upload prefix"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, on, err := cloudsync.FromEnv(env(tc.vars))
			if err == nil || on || cfg != nil {
				t.Fatalf("got %v, %v, %v; want an error", cfg, on, err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not name %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "s3cr3t") {
				t.Errorf("error leaks the secret: %q", err)
			}
		})
	}
}
